import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { deletePaths } from '../maintain/delete-paths.js';
import { interruptedLine, type RemovalTally } from '../maintain/remove-paths.js';
import { onStopSignals, STOP_SIGNALS } from '../push/stop-signals.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { formatBytes } from '../util/quantities.js';
import { shellWord } from '../util/shell-word.js';

export interface DeleteOptions {
  recursive?: boolean;
  dryRun?: boolean;
}

/**
 * `cachix delete CACHE PATH... [--recursive] [--dry-run]`: the store paths that went (or would
 * go) on stdout, one a line, referrers first.
 */
export async function run(context: Context, cacheName: string, paths: string[], options: DeleteOptions): Promise<number> {
  const storePaths = await resolveStorePaths(paths);
  const tally: RemovalTally = { planned: 0, deleted: 0 };
  // What is in the cache is consistent at every moment (maintain/remove-paths.ts): stopping is safe.
  const stopSaying = onStopSignals((signal) => {
    context.stderr.write(`\n${interruptedLine(tally, 'delete')}\n`);
    process.exit(STOP_SIGNALS[signal]);
  });
  const opened = await openCache(cacheName, context);
  try {
    const log = (line: string): void => context.log(line);
    const dryRun = options.dryRun ?? false;
    const { inventory, waves, removal } = await deletePaths(opened.cache, storePaths, {
      recursive: options.recursive ?? false,
      dryRun,
      cacheArgument: shellWord(cacheName),
      log,
      tally,
    });
    if (!removal) {
      const doomed = waves.flat();
      for (const hashPart of doomed) context.stdout.write(`${inventory.paths.storePath(inventory.paths.indexOf(hashPart))}\n`);
      log(`dry run: would delete ${doomed.length} path(s); nothing was changed`);
      return 0;
    }
    for (const hashPart of removal.deleted) context.stdout.write(`${inventory.paths.storePath(inventory.paths.indexOf(hashPart))}\n`);
    if (removal.kept.length > 0) log(`${removal.kept.length} path(s) kept because a push running meanwhile needs them`);
    log(
      `deleted ${removal.deleted.length} path(s) and ${removal.nars.length} NAR file(s), freeing ${formatBytes(removal.narBytes + removal.narInfoBytes)}`,
    );
    return 0;
  } finally {
    stopSaying();
    await opened.cache.close?.();
  }
}
