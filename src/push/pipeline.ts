import { mkdir } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import type { SigningKey } from '../nix/signing.js';
import type { PathInfo } from '../store/path-info.js';
import { listingOfPaths, queryClosure, type ClosureListing } from '../store/closure.js';
import type { CompressionMethod } from '../util/compression.js';
import { SMALL_NAR_BYTES } from './nar-spool.js';
import { discardSpooled, prepareNar, preparedSpooled } from './nar-upload.js';
import { PreparedWindow, plainNarOptions, SMALL_POOL_MIN_PATHS, smallNarWorkers } from './small-nar-window.js';
import { SmallNarPool, type SmallNar } from './small-nar-pool.js';
import { narSourceOf } from './nar-source.js';
import type { Progress } from './progress.js';
import { formatBytes } from '../util/quantities.js';
import { Semaphore } from '../util/semaphore.js';
import { sweepStaleSpoolFiles } from './spool-sweep.js';
import { filteredSummary, filteredTotals, filterPaths, type FilteredTotals, type PathSelection } from './path-filter.js';
import { warnUnmetReferences } from './unmet-references.js';
import { pathsGoneDuringGc } from './after-gc.js';

export interface PushOptions {
  compression: CompressionMethod;
  compressionLevel?: number | undefined;
  jobs: number;
  omitDeriver: boolean;
  /** Absent for a cache that signs on its server (BinaryCache.uploadNarSource). */
  signingKey?: SigningKey | undefined;
  /** Upstream keys and excludes; without it, every path of the closure is a candidate. */
  selection?: PathSelection | undefined;
  /** false: push exactly the given paths, not their closures (--no-closure). */
  closure?: boolean | undefined;
}

/** How far a push got, kept current while it runs (for the line printed when it is interrupted). */
export interface PushTally {
  planned: number;
  pushed: number;
}

export interface PushCounts {
  pushed: number;
  skipped: number;
  failed: number;
  narBytes: number;
  fileBytes: number;
}

/** Totals of a push; what was left out on purpose (served upstream, excluded) when a filter ran. */
export interface PushSummary extends PushCounts, Partial<FilteredTotals> {}

/**
 * Large NARs: compressing is CPU-bound in zstd's own threads, which already use every core, so
 * one is compressed at a time; a second would only add memory. Uploading is network-bound and
 * runs beside the next compression, one at a time too, since a multipart upload holds its part
 * buffers. Small NARs run beside both, up to --jobs.
 */
const LARGE_COMPRESSIONS_AT_ONCE = 1;
const LARGE_UPLOADS_AT_ONCE = 1;

export function summaryLine(summary: PushSummary, cacheDescription: string): string {
  const pushed = `pushed ${summary.pushed} paths (${formatBytes(summary.narBytes)} of NAR, ${formatBytes(summary.fileBytes)} uploaded)`;
  const failed = summary.failed > 0 ? `, ${summary.failed} failed` : '';
  return `${pushed}, skipped ${summary.skipped} already in ${cacheDescription}${failed}${filteredSummary(summary)}`;
}

/**
 * Pushes the closure of `storePaths`: what the cache lacks is uploaded `jobs` at a time, each path
 * only after the references it needs are in the cache, so a client never sees a narinfo whose
 * references are missing. The first failure stops new uploads; those in flight finish.
 */
export async function pushPaths(
  cache: BinaryCache,
  storePaths: string[],
  options: PushOptions,
  progress: Progress,
  tally?: PushTally,
): Promise<PushSummary> {
  const listing = options.closure === false ? listingOfPaths(storePaths) : await queryClosure(storePaths);
  return pushClosure(cache, listing, options, progress, tally);
}

/**
 * pushPaths for a closure already listed (the push command lists it while it opens the cache).
 * Only the paths the cache lacks are asked of Nix in full, and only they meet the upstream filter
 * and --exclude: a path already in the cache is skipped whatever signed it.
 */
export async function pushClosure(
  cache: BinaryCache,
  closure: ClosureListing,
  options: PushOptions,
  progress: Progress,
  tally?: PushTally,
): Promise<PushSummary> {
  const startedAt = new Date();
  const missingHashes = closure.paths.length === 0 ? new Set<string>() : await cache.missing(closure.paths.map(hashPartOf));
  const missingPaths = closure.paths.filter((path) => missingHashes.has(hashPartOf(path)));
  const filtered = filterPaths(await closure.infos(missingPaths), options.selection);
  const toPush = filtered.kept;
  const summary: PushSummary = {
    pushed: 0,
    skipped: closure.paths.length - missingPaths.length,
    failed: 0,
    narBytes: 0,
    fileBytes: 0,
    ...filteredTotals(filtered),
  };
  if (tally) tally.planned = toPush.length;
  await warnUnmetReferences(cache, toPush, new Set(closure.paths), filtered, options.selection, (line) => progress.log(line));
  progress.start(
    toPush.length,
    toPush.reduce((total, info) => total + info.narSize, 0),
  );
  if (toPush.length > 0) await uploadInOrder(cache, toPush, options, progress, summary, tally);
  if (toPush.length > 0) {
    // A gc overlapping this push may have deleted a NAR as we wrote it again: upload those once more.
    const gone = await pathsGoneDuringGc(cache, closure.paths, startedAt);
    if (gone.length > 0) {
      const again = filterPaths(await closure.infos(gone), options.selection).kept;
      summary.skipped -= again.filter((info) => !missingHashes.has(hashPartOf(info.path))).length;
      if (again.length > 0) await uploadInOrder(cache, again, options, progress, summary, tally);
    }
  }
  return summary;
}

async function uploadInOrder(
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
  const spoolDirectory = cache.spoolDirectory ?? tmpdir();
  await mkdir(spoolDirectory, { recursive: true });
  await sweepStaleSpoolFiles(spoolDirectory);
  const zstdWorkers = Math.max(1, availableParallelism());
  const smallCount = toPush.reduce((count, info) => count + (isSmall(info) ? 1 : 0), 0);
  // A server that signs and compresses (uploadNarSource) gets the NAR as dumped: nothing to prepare.
  const signingKey = cache.uploadNarSource ? undefined : options.signingKey;
  const pool =
    signingKey && smallCount >= SMALL_POOL_MIN_PATHS
      ? new SmallNarPool(smallNarWorkers(), plainNarOptions({ ...options, signingKey }, spoolDirectory))
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
    // Spooled by the pool but never uploaded, because a failure stopped the push.
    for (const { small } of readyToUpload.splice(0)) if (small) discardSpooled(small.localPath);
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
    const onNarBytes = (bytes: number): void => {
      streamedBytes += bytes;
      progress.narBytesRead?.(bytes);
    };
    if (cache.uploadNarSource) {
      // The server compresses and signs: it gets the NAR as dumped, streamed, never spooled.
      const source = narSourceOf(info, { omitDeriver: options.omitDeriver, onNarBytes });
      const sent = await whileHolding(large ? largeUploads : undefined, () => cache.uploadNarSource!(source));
      summary.pushed++;
      summary.narBytes += info.narSize;
      summary.fileBytes += sent.sentBytes;
      progress.pathDone(info.path, info.narSize, sent.sentBytes, streamedBytes);
      return;
    }
    // Without a key (a token-only cachix push) the narinfo goes unsigned and the service signs it;
    // preparePush has made sure every other cache has one.
    const prepared = small
      ? preparedSpooled(small.localPath, small.narInfo, small.fileSize)
      : await whileHolding(large ? largeCompressions : undefined, () =>
          prepareNar(info, { ...options, signingKey: options.signingKey, zstdWorkers, onNarBytes }, spoolDirectory),
        );
    try {
      await whileHolding(large ? largeUploads : undefined, () => cache.upload(prepared.upload, prepared.narInfo));
    } finally {
      await prepared.cleanup();
    }
    summary.pushed++;
    if (tally) tally.pushed = summary.pushed;
    summary.narBytes += info.narSize;
    summary.fileBytes += prepared.upload.fileSize;
    progress.pathDone(info.path, info.narSize, prepared.upload.fileSize, streamedBytes);
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
