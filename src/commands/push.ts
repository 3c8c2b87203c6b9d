import type { Context, InputStream } from '../context.js';
import { UserError } from '../errors.js';
import type { PushFlags } from '../push/prepare.js';
import { listingOfPaths, queryClosure, requireValid } from '../store/closure.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { sortStdinPaths } from '../store/stdin-paths.js';
import { takeEarlyClosure } from '../store/early-closure.js';
import type { PushTally } from '../push/push-options.js';
import { stopCleanlyOnSignal } from '../push/interrupt.js';

async function readPathsFromStdin(stdin: InputStream): Promise<string[]> {
  if (stdin.isTTY) {
    throw new UserError(
      'no store paths given',
      'pass them as arguments (cachix push NAME ./result) or pipe them in (nix-store -qR ./result | cachix push NAME)',
    );
  }
  let text = '';
  for await (const chunk of stdin) text += chunk.toString();
  return text.split(/\s+/).filter(Boolean);
}

/**
 * The valid store paths piped in, and a closing note on the entries skipped; undefined when none
 * is left to push (said on stderr): an empty list is what a CI job that built nothing new sends.
 */
async function readStdinPaths(context: Context): Promise<{ given: string[]; skippedNote?: string } | undefined> {
  const entries = await readPathsFromStdin(context.stdin);
  if (entries.length === 0) {
    context.log('no store paths on stdin: nothing to push');
    return undefined;
  }
  const { valid, skipped } = await sortStdinPaths(entries, context.storeDir);
  for (const { entry, reason } of skipped) context.log(`warning: not pushing ${entry}: ${reason}`);
  const skippedNote =
    skipped.length > 0
      ? `skipped ${skipped.length} of ${entries.length} entries from stdin that are not valid store paths (named above)`
      : undefined;
  if (valid.length === 0) {
    context.log(`${skippedNote}: nothing to push`);
    return undefined;
  }
  return { given: valid, skippedNote };
}

export async function run(
  context: Context,
  cacheName: string,
  pathArgs: string[],
  flags: PushFlags & { withBuildDeps?: boolean },
): Promise<void> {
  let given = pathArgs;
  let skippedNote: string | undefined;
  if (pathArgs.length === 0) {
    const fromStdin = await readStdinPaths(context);
    if (fromStdin === undefined) return;
    ({ given, skippedNote } = fromStdin);
  }
  // Asking Nix for the closure is most of a push that finds everything already in the cache, so it
  // starts first, and the cache is opened (and the code for pushing loaded) while Nix works. When
  // both fail, the cache's error (no key, no such cache) is the one reported, every time.
  const stopQuery = new AbortController();
  const closureQuery = resolveStorePaths(given, context.storeDir).then(async (paths) => {
    if (!flags.withBuildDeps && flags.closure !== false)
      return takeEarlyClosure(paths, stopQuery.signal) ?? queryClosure(paths, stopQuery.signal);
    // --with-build-deps adds each deriver's closure; --no-closure lists the paths alone.
    await requireValid(paths);
    if (!flags.withBuildDeps) return listingOfPaths(paths);
    const { withBuildDeps } = await import('../push/build-deps.js');
    const roots = await withBuildDeps(paths, (line) => context.log(line));
    return flags.closure === false ? listingOfPaths(roots) : queryClosure(roots, stopQuery.signal);
  });
  const opening = import('../push/prepare.js').then(({ preparePush }) => preparePush(context, cacheName, flags));
  const loadingPipeline = import('../push/pipeline.js');
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
    if (skippedNote) context.log(skippedNote);
  } finally {
    prepared.progress.flush?.();
    stopHandling();
    await prepared.cache.close?.();
  }
}
