// Runs in a small-NAR worker thread: prepareNar for each path of a batch, in memory only (a path
// larger than Nix recorded goes back to the main thread to be streamed), so that for thousands of
// tiny paths every core works while the main thread signs the narinfos and writes them, in order.
// Into a local cache each NAR is placed under its final name here, complete, by rename; its
// narinfo still comes later, from the main thread, in dependency order.
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../errors.js';
import { prepareNar } from './prepare.js';
import type { SmallNarOptions, SmallNarReply, SmallNarRequest, SmallNarResult } from './small-pool.js';

const port = parentPort!;
const { stage, ...options } = workerData as SmallNarOptions;

async function prepare(request: SmallNarRequest): Promise<SmallNarResult> {
  try {
    const prepared = await prepareNar(request.info, options, { ...stage, inMemoryOnly: true });
    return prepared ? { kind: 'ready', prepared } : { kind: 'too-large' };
  } catch (error) {
    const hint = error instanceof UserError ? error.hint : undefined;
    return { kind: 'failed', message: (error as Error).message, hint, user: error instanceof UserError };
  }
}

port.on('message', (batch: { id: number; requests: SmallNarRequest[] }) => {
  void (async () => {
    const results: SmallNarResult[] = [];
    for (const request of batch.requests) results.push(await prepare(request));
    port.postMessage({ id: batch.id, results } satisfies SmallNarReply);
  })();
});
