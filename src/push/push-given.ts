// `cachix push`'s run below the command line: the paths' listing (the one place that decides
// closure or not) asked of Nix while the cache is opened, then the pipeline.
import type { Context } from '../context.js';
import { listingOfPaths, queryClosure, requireValid, type ClosureListing } from '../store/closure.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { takeEarlyClosure } from '../store/early-closure.js';
import type { PushFlags } from './prepare.js';
import type { PushTally } from './push-options.js';
import { stopCleanlyOnSignal } from './interrupt.js';

export interface ListingFlags {
  /** --no-closure gives false: only the paths given. */
  closure?: boolean | undefined;
  /** --with-build-deps: each deriver's closure too. */
  withBuildDeps?: boolean | undefined;
}

/** What a push of `given` covers: their closure (the default), the paths alone, and with --with-build-deps their derivers' closures. */
export async function listPushedPaths(
  given: string[],
  flags: ListingFlags,
  storeDir: string,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<ClosureListing> {
  const paths = await resolveStorePaths(given, storeDir);
  if (!flags.withBuildDeps && flags.closure !== false) return takeEarlyClosure(paths, signal) ?? queryClosure(paths, signal);
  // --with-build-deps adds each deriver's closure; --no-closure lists the paths alone.
  await requireValid(paths);
  if (!flags.withBuildDeps) return listingOfPaths(paths);
  const { withBuildDeps } = await import('./build-deps.js');
  const roots = await withBuildDeps(paths, log);
  return flags.closure === false ? listingOfPaths(roots) : queryClosure(roots, signal);
}

/**
 * Pushes `given` (and, as the flags say, their closures) to the cache; the summary line, then
 * `closingNote`, on stderr.
 */
export async function pushGivenPaths(
  context: Context,
  cacheName: string,
  given: string[],
  flags: PushFlags & ListingFlags,
  closingNote?: string,
): Promise<void> {
  // Asking Nix for the closure is most of a push that finds everything already in the cache, so it
  // starts first, and the cache is opened (and the code for pushing loaded) while Nix works. When
  // both fail, the cache's error (no key, no such cache) is the one reported, every time.
  const stopQuery = new AbortController();
  const closureQuery = listPushedPaths(given, flags, context.storeDir, stopQuery.signal, (line) => context.log(line));
  const opening = import('./prepare.js').then(({ preparePush }) => preparePush(context, cacheName, flags));
  const loadingPipeline = import('./pipeline.js');
  loadingPipeline.catch(() => undefined);
  // No reason to wait for Nix before saying what is wrong with the cache.
  opening.catch(() => stopQuery.abort());
  const [cacheSide, pathSide] = await Promise.allSettled([opening, closureQuery]);
  if (cacheSide.status === 'rejected') throw cacheSide.reason;
  const prepared = cacheSide.value;
  const tally: PushTally = { planned: 0, pushed: 0 };
  const stopHandling = stopCleanlyOnSignal(tally, context, () => prepared.progress.flush?.());
  try {
    if (pathSide.status === 'rejected') throw pathSide.reason;
    const { pushClosure, summaryLine } = await loadingPipeline;
    const summary = await pushClosure(prepared.cache, pathSide.value, prepared.pushOptions, prepared.progress, tally);
    prepared.progress.finish(summaryLine(summary, prepared.cache.description));
    if (closingNote) context.log(closingNote);
  } finally {
    prepared.progress.flush?.();
    stopHandling();
    await prepared.cache.close?.();
  }
}
