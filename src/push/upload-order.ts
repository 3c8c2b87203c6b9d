// Uploads the paths a cache lacks in dependency order: small NARs prepared on a worker pool ahead
// of the uploads, large ones compressed and uploaded one at a time beside them.
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { BinaryCache } from '../caches/cache.js';
import { stagingDirectory } from '../caches/nar-staging.js';
import { UserError } from '../errors.js';
import type { PathInfo } from '../store/path-info.js';
import { SMALL_NAR_BYTES } from './nar/spool.js';
import { prepareNar } from './nar/prepare.js';
import { discardPrepared, stagedUpload } from './nar/staged.js';
import { signedNarInfo } from './narinfo-signature.js';
import { writeBuildLog, writeListingFiles } from './cache-extras.js';
import { PreparedWindow, plainNarOptions, SMALL_POOL_MIN_PATHS, smallNarWorkers } from './nar/small-window.js';
import { SmallNarPool, type SmallNar } from './nar/small-pool.js';
import { narSourceOf } from './nar/source.js';
import type { Progress } from './progress.js';
import { Semaphore } from '../util/semaphore.js';
import { sweepStaleSpoolFiles } from './nar/spool-sweep.js';
import type { PushOptions, PushSummary, PushTally } from './push-options.js';

/**
 * Large NARs: compressing is CPU-bound in zstd's own threads, which already use every core, so
 * one is compressed at a time; a second would only add memory. Uploading is network-bound and
 * runs beside the next compression, one at a time too, since a multipart upload holds its part
 * buffers. Small NARs run beside both, up to --jobs.
 */
const LARGE_COMPRESSIONS_AT_ONCE = 1;
const LARGE_UPLOADS_AT_ONCE = 1;

export async function uploadInOrder(
  cache: BinaryCache,
  toPush: PathInfo[],
  options: PushOptions,
  progress: Progress,
  summary: PushSummary,
  tally: PushTally | undefined,
): Promise<void> {
  const pending = new Map(toPush.map((info) => [info.path, info]));
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const info of toPush) {
    const needed = info.references.filter((reference) => reference !== info.path && pending.has(reference));
    waitingOn.set(info.path, needed.length);
    for (const reference of needed) {
      const list = dependents.get(reference);
      if (list) list.push(info.path);
      else dependents.set(reference, [info.path]);
    }
  }
  const isSmall = (info: PathInfo): boolean => info.narSize <= SMALL_NAR_BYTES;
  const largeCompressions = new Semaphore(LARGE_COMPRESSIONS_AT_ONCE);
  const largeUploads = new Semaphore(LARGE_UPLOADS_AT_ONCE);
  const staging = cache.capabilities.staging;
  const spoolDirectory = stagingDirectory(staging);
  await mkdir(spoolDirectory, { recursive: true });
  await sweepStaleSpoolFiles(spoolDirectory);
  const zstdWorkers = Math.max(1, availableParallelism());
  const smallCount = toPush.reduce((count, info) => count + (isSmall(info) ? 1 : 0), 0);
  // A server that signs and compresses gets the NAR as dumped: nothing to prepare or sign.
  const serverSigns = cache.capabilities.signs === 'server';
  const signingKey = serverSigns ? undefined : options.signingKey;
  // A server that signs has no route for logs or listings (preparePush said so once).
  const extras = serverSigns ? undefined : options.extras;
  const listing = extras !== undefined && (extras.listings || extras.debugInfo);
  const logsSeen = new Set<string>();
  // Small NARs are prepared on the pool (and placed there, where the cache lets the pusher place
  // them); signing stays here, where the main thread would otherwise wait for the busier workers.
  const pool =
    signingKey && smallCount >= SMALL_POOL_MIN_PATHS
      ? new SmallNarPool(smallNarWorkers(), plainNarOptions({ ...options, listing }, { staging, place: true }))
      : undefined;
  const window = new PreparedWindow();
  const readyToPrepare: PathInfo[] = [];
  const readyToUpload: Array<{ info: PathInfo; small?: SmallNar }> = [];
  const becameReady = (info: PathInfo): void => {
    if (pool && isSmall(info)) readyToPrepare.push(info);
    else readyToUpload.push({ info });
  };
  for (const info of toPush) if (waitingOn.get(info.path) === 0) becameReady(info);
  let firstError: unknown;
  let running = 0;
  let preparing = 0;

  try {
    await new Promise<void>((resolveAll) => {
      const fail = (error: unknown): void => {
        summary.failed++;
        firstError ??= error;
      };
      const startMore = (): void => {
        // Small paths are prepared on the pool ahead of the uploads, within a bounded window.
        while (firstError === undefined && readyToPrepare.length > 0 && window.admits(readyToPrepare[0]!)) {
          const info = readyToPrepare.shift()!;
          window.add(info);
          preparing++;
          void pool!.prepare(info).then(
            (small) => {
              preparing--;
              readyToUpload.push({ info, small });
              startMore();
            },
            (error: unknown) => {
              preparing--;
              window.remove(info);
              fail(error);
              startMore();
            },
          );
        }
        while (firstError === undefined && running < options.jobs && readyToUpload.length > 0) {
          const { info, small } = readyToUpload.shift()!;
          running++;
          void pushOne(info, small).then(
            () => {
              running--;
              window.remove(info);
              for (const dependent of dependents.get(info.path) ?? []) {
                const left = waitingOn.get(dependent)! - 1;
                waitingOn.set(dependent, left);
                if (left === 0) becameReady(pending.get(dependent)!);
              }
              startMore();
            },
            (error: unknown) => {
              running--;
              window.remove(info);
              fail(error);
              startMore();
            },
          );
        }
        if (running === 0 && preparing === 0) resolveAll();
      };
      startMore();
    });
  } finally {
    await pool?.close();
    // Prepared by the pool but never uploaded, because a failure stopped the push.
    for (const { small } of readyToUpload.splice(0)) if (small) discardPrepared(small);
  }
  if (firstError !== undefined) {
    const unpushed = toPush.length - summary.pushed;
    if (firstError instanceof UserError)
      throw new UserError(
        firstError.message,
        firstError.hint ?? `${unpushed} paths were not pushed; run the push again once fixed`,
        firstError.exitCode,
      );
    throw firstError;
  }

  async function pushOne(info: PathInfo, small?: SmallNar): Promise<void> {
    const large = info.narSize > SMALL_NAR_BYTES;
    let streamedBytes = 0;
    progress.pathStarted?.(info.path, info.narSize);
    const onNarBytes = (bytes: number): void => {
      streamedBytes += bytes;
      progress.narBytesRead?.(bytes);
      progress.pathProgress?.(info.path, streamedBytes, bytes);
    };
    if (serverSigns) {
      // The server compresses and signs: it gets the NAR as dumped, streamed, never spooled.
      const source = narSourceOf(info, { omitDeriver: options.omitDeriver, onNarBytes });
      const sent = await whileHolding(large ? largeUploads : undefined, () => cache.uploadNarSource!(source));
      summary.pushed++;
      if (tally) tally.pushed = summary.pushed;
      summary.narBytes += info.narSize;
      summary.fileBytes += sent.sentBytes;
      progress.pathDone(info.path, info.narSize, sent.sentBytes, streamedBytes);
      return;
    }
    // Prepared on the pool, or here (streamed when large); a main-thread NAR stays staged until upload().
    const prepared =
      small ??
      (await whileHolding(large ? largeCompressions : undefined, () =>
        prepareNar(info, { ...options, zstdWorkers, onNarBytes, listing }, { staging, place: false }),
      ))!;
    // Without a key (a token-only cachix push) the narinfo goes unsigned and the service signs it;
    // preparePush has made sure every other cache has one.
    const narInfo = signedNarInfo(prepared.narInfo, info, signingKey);
    const staged = stagedUpload(prepared);
    try {
      if (extras && prepared.listing) await writeListingFiles(cache, narInfo, prepared.listing, extras);
      await whileHolding(large ? largeUploads : undefined, () => cache.upload(staged.upload, narInfo));
    } finally {
      staged.cleanup();
    }
    if (extras?.logs && summary.extras) await writeBuildLog(cache, info.deriver, extras, logsSeen, summary.extras);
    summary.pushed++;
    if (tally) tally.pushed = summary.pushed;
    summary.narBytes += info.narSize;
    summary.fileBytes += prepared.fileSize;
    progress.pathDone(info.path, info.narSize, prepared.fileSize, streamedBytes);
  }
}

async function whileHolding<T>(semaphore: Semaphore | undefined, work: () => Promise<T>): Promise<T> {
  if (!semaphore) return work();
  await semaphore.acquire();
  try {
    return await work();
  } finally {
    semaphore.release();
  }
}
