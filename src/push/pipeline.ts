import type { BinaryCache } from '../caches/cache.js';
import { hashPartOf } from '../nix/store-path.js';
import { queryClosure, speculateInfos, type ClosureListing } from '../store/closure.js';
import { stopEarlyDump } from '../store/early-dump.js';
import { warnLine, type Progress } from './progress.js';
import { formatBytes } from '../util/quantities.js';
import { filteredSummary, filteredTotals, filterPaths } from './path-filter.js';
import type { PushOptions, PushSummary, PushTally } from './push-options.js';
import { warnUnmetReferences } from './unmet-references.js';
import { pathsGoneDuringGc } from './after-gc.js';
import { holdIfAsked } from '../util/test-hold.js';

export function summaryLine(summary: PushSummary, cacheDescription: string): string {
  const pushed = `pushed ${summary.pushed} paths (${formatBytes(summary.narBytes)} of NAR, ${formatBytes(summary.fileBytes)} uploaded)`;
  const failed = summary.failed > 0 ? `, ${summary.failed} failed` : '';
  const logs = summary.extras
    ? `; ${summary.extras.logsUploaded} build logs uploaded${summary.extras.logsMissing > 0 ? ` (${summary.extras.logsMissing} paths had none in this store)` : ''}`
    : '';
  return `${pushed}, skipped ${summary.skipped} already in ${cacheDescription}${failed}${filteredSummary(summary)}${logs}`;
}

/** Up to this many paths, their records are asked of Nix before knowing which the cache lacks. */
const SPECULATE_MAX_PATHS = 1000;

/**
 * Pushes the closure of `storePaths` (watch-store, the daemon): what the cache lacks is uploaded `jobs` at a time, each path
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
  return pushClosure(cache, await queryClosure(storePaths), options, progress, tally);
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
  // A small closure's records are asked for while a remote cache is asked what it lacks: one Nix
  // call less on the way for a push that has something to upload, a cheap one wasted for one that
  // has not. A local cache answers sooner than Nix starts, so there the question comes first.
  const speculate = closure.paths.length <= SPECULATE_MAX_PATHS && !cache.capabilities.local;
  const speculation = speculate ? speculateInfos(closure) : undefined;
  const known = options.knownPresent;
  const unknownHashes = closure.paths.map(hashPartOf).filter((hashPart) => !known?.has(hashPart));
  let missingHashes: Set<string>;
  try {
    missingHashes = unknownHashes.length === 0 ? new Set<string>() : await cache.missing(unknownHashes);
  } catch (error) {
    speculation?.drop();
    throw error;
  }
  if (known) for (const hashPart of unknownHashes) if (!missingHashes.has(hashPart)) known.add(hashPart);
  const missingPaths = closure.paths.filter((path) => missingHashes.has(hashPartOf(path)));
  // A dump started at the process entry for a path the cache holds already is not wanted.
  stopEarlyDump((path) => missingHashes.has(hashPartOf(path)));
  // Loaded only when something is to be uploaded (a push that finds everything present needs none
  // of it), and while Nix is asked for the records.
  const loadingUploads = missingPaths.length > 0 ? import('./upload-order.js') : undefined;
  loadingUploads?.catch(() => undefined);
  const missingInfos = await (speculation ?? closure).infos(missingPaths);
  const filtered = filterPaths(missingInfos, options.selection);
  const toPush = filtered.kept;
  const pushing = new Set(toPush.map((info) => info.path));
  stopEarlyDump((path) => pushing.has(path));
  const summary: PushSummary = {
    pushed: 0,
    skipped: closure.paths.length - missingPaths.length,
    failed: 0,
    narBytes: 0,
    fileBytes: 0,
    ...filteredTotals(filtered),
    ...(options.extras?.logs && { extras: { logsUploaded: 0, logsMissing: 0 } }),
  };
  if (tally) tally.planned = toPush.length;
  if (progress.pathsSkipped) {
    progress.pathsSkipped(closure.paths.filter((path) => !pushing.has(path)));
  }
  await warnUnmetReferences(cache, toPush, new Set(closure.paths), filtered, options.selection, (line) => warnLine(progress, line));
  progress.start(
    toPush.length,
    toPush.reduce((total, info) => total + info.narSize, 0),
  );
  if (toPush.length > 0) {
    await holdIfAsked('push-uploading');
    const { uploadInOrder } = await (loadingUploads ?? import('./upload-order.js'));
    try {
      await uploadInOrder(cache, toPush, options, progress, summary, tally);
    } finally {
      // Its path was read another way (a small NAR, on a worker), or the push failed first.
      stopEarlyDump();
    }
    // A gc overlapping this push may have deleted a NAR as we wrote it again: upload those once more.
    const gone = await pathsGoneDuringGc(cache, closure.paths, startedAt);
    if (gone.length > 0) {
      const again = filterPaths(await closure.infos(gone), options.selection).kept;
      summary.skipped -= again.filter((info) => !missingHashes.has(hashPartOf(info.path))).length;
      if (again.length > 0) {
        // A round of its own: its own count and total, so no counter passes its total.
        progress.log(`a gc ran meanwhile and removed ${again.length} path(s) this push needs: pushing them again`);
        progress.start(
          again.length,
          again.reduce((total, info) => total + info.narSize, 0),
        );
        if (tally) tally.planned += again.length;
        await uploadInOrder(cache, again, options, progress, summary, tally);
      }
    }
  }
  return summary;
}
