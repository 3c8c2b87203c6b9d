// Runs in a small-NAR worker thread: for each path of a batch, dumps the NAR, hashes it, checks
// it against Nix's record, compresses it, hashes the result and spools the compressed NAR (into
// a local cache, under its final name), so that for thousands of tiny paths every core works
// while the main thread signs the narinfos and writes them, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../errors.js';
import { join } from 'node:path';
import { checkedNarInfo, placeSpooled, writeSpoolFile } from './prepare.js';
import { compressSmall, spooledFromMemory } from './spool.js';
import type { SmallNarOptions, SmallNarReply, SmallNarRequest, SmallNarResult } from './small-pool.js';

const port = parentPort!;
const { spoolDirectory, narRoot, ...options } = workerData as SmallNarOptions;

async function prepare(request: SmallNarRequest): Promise<SmallNarResult> {
  try {
    const small = await compressSmall(request.info, options);
    // Larger than Nix recorded: the main thread streams it instead.
    if (!small) return { kind: 'too-large' };
    const narInfo = checkedNarInfo(request.info, spooledFromMemory(small), options);
    // Written here, not on the main thread: there, each file costs a few syscalls of the time
    // it has for putting NARs in place and writing narinfos in order.
    const spooled = writeSpoolFile(small.compressed, options.compression, spoolDirectory);
    if (!narRoot) return { kind: 'ready', narInfo, localPath: spooled, fileSize: small.compressed.length, placed: false };
    // A local cache: the NAR goes under its final name here, complete, by rename; its narinfo
    // still comes later, from the main thread, in dependency order.
    const localPath = placeSpooled(spooled, join(narRoot, narInfo.url), spoolDirectory);
    return { kind: 'ready', narInfo, localPath, fileSize: small.compressed.length, placed: true };
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
