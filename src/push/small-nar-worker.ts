// Runs in a small-NAR worker thread: for each path of a batch, dumps the NAR, hashes it, checks
// it against Nix's record, compresses it, hashes the result, signs the narinfo and spools the
// compressed NAR, so that for thousands of tiny paths every core works while the main thread
// only puts them in the cache, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../errors.js';
import { checkedNarInfo, writeSpoolFile, type NarOptions } from './nar-upload.js';
import { compressSmall, spooledFromMemory } from './nar-spool.js';
import type { SmallNarReply, SmallNarRequest, SmallNarResult } from './small-nar-pool.js';

const port = parentPort!;
const { spoolDirectory, ...options } = workerData as NarOptions & { spoolDirectory: string };

async function prepare(request: SmallNarRequest): Promise<SmallNarResult> {
  try {
    const small = await compressSmall(request.info, options);
    // Larger than Nix recorded: the main thread streams it instead.
    if (!small) return { kind: 'too-large' };
    const narInfo = checkedNarInfo(request.info, spooledFromMemory(small), options);
    // Written here, not on the main thread: there, each file costs a few syscalls of the time
    // it has for putting NARs in place and writing narinfos in order.
    const localPath = writeSpoolFile(small.compressed, options.compression, spoolDirectory);
    return { kind: 'ready', narInfo, localPath, fileSize: small.compressed.length };
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
