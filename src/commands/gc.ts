import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { collectGarbage, DEFAULT_GRACE_MS, describePinGap } from '../maintain/gc.js';
import { interruptedLine, type RemovalTally } from '../maintain/remove-paths.js';
import { onStopSignals, STOP_SIGNALS } from '../push/stop-signals.js';
import { formatBytes, parseDuration, parseSize } from '../util/quantities.js';
import { shellWord } from '../util/shell-word.js';

export interface GcOptions {
  olderThan?: string;
  maxSize?: string;
  grace?: string;
  dryRun?: boolean;
  acceptPinGaps?: boolean;
}

function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const parsed = parseDuration(text);
  if (parsed === undefined)
    throw new UserError(`${flag} '${text}' is not a duration`, 'write it as 0, 45m, 12h, 30d or 2w (units may be combined: 1d12h)', 2);
  return parsed;
}

/**
 * `cachix gc CACHE [--older-than D] [--max-size S] [--dry-run] [--accept-pin-gaps]`: the store
 * paths deleted on stdout, one a line (those it would delete, with --dry-run); what was freed on stderr.
 */
export async function run(context: Context, cacheName: string, options: GcOptions): Promise<number> {
  const cacheArgument = shellWord(cacheName);
  const olderThanMs = duration('--older-than', options.olderThan);
  const graceMs = duration('--grace', options.grace) ?? DEFAULT_GRACE_MS;
  let maxSizeBytes: number | undefined;
  if (options.maxSize !== undefined) {
    maxSizeBytes = parseSize(options.maxSize);
    if (maxSizeBytes === undefined)
      throw new UserError(`--max-size '${options.maxSize}' is not a size`, 'write it as bytes or with a unit: 500M, 10G, 2.5GiB, 800MB', 2);
  }
  if (olderThanMs === undefined && maxSizeBytes === undefined) {
    throw new UserError(
      'gc needs to know what to keep besides pins: --older-than DURATION and/or --max-size SIZE',
      `e.g. cachix gc ${cacheArgument} --older-than 30d (add --dry-run to see what would go)`,
      2,
    );
  }
  const tally: RemovalTally = { planned: 0, deleted: 0 };
  // What is in the cache is consistent at every moment (maintain/remove-paths.ts): stopping is safe.
  const stopSaying = onStopSignals((signal) => {
    context.stderr.write(`\n${interruptedLine(tally, 'gc')}\n`);
    process.exit(STOP_SIGNALS[signal]);
  });
  const opened = await openCache(cacheName, context);
  try {
    const log = (line: string): void => context.log(line);
    const { inventory, plan, removal } = await collectGarbage(
      opened.cache,
      { olderThanMs, maxSizeBytes, graceMs },
      { dryRun: options.dryRun ?? false, acceptPinGaps: options.acceptPinGaps ?? false, cacheArgument, log, tally },
    );
    for (const gap of plan.pinGaps)
      log(`warning: ${describePinGap(gap)}: what lies below it is not protected and goes unless something else keeps it`);
    if (inventory.unreadable.length > 0)
      log(
        `warning: ${inventory.unreadable.length} narinfo(s) cannot be read; they and any NAR not named elsewhere are left alone (see cachix info)`,
      );
    const doomed = plan.waves.flat();
    if (!removal) {
      for (const hashPart of doomed) context.stdout.write(`${inventory.paths.storePath(inventory.paths.indexOf(hashPart))}\n`);
      for (const nar of plan.orphanNars) context.stdout.write(`${nar}\n`);
      log(
        `dry run: would delete ${doomed.length} of ${inventory.paths.size} paths, ${plan.narsOfDeleted.length} NAR file(s) of theirs and ${plan.orphanNars.length} unnamed NAR(s), freeing ${formatBytes(plan.freedBytes)}; ${plan.liveCount} paths (${formatBytes(plan.keptBytes)}) stay`,
      );
      return 0;
    }
    for (const hashPart of removal.deleted) context.stdout.write(`${inventory.paths.storePath(inventory.paths.indexOf(hashPart))}\n`);
    if (removal.kept.length > 0) log(`${removal.kept.length} path(s) kept because a push running meanwhile needs them`);
    const byOthers = doomed.length - removal.deleted.length - removal.kept.length;
    log(
      `deleted ${removal.deleted.length} of ${inventory.paths.size} paths and ${removal.nars.length} NAR file(s), freeing ${formatBytes(removal.narBytes + removal.narInfoBytes)}; ${inventory.paths.size - doomed.length + removal.kept.length} paths stay` +
        (byOthers > 0 ? `; ${byOthers} other(s) were deleted meanwhile by another process` : ''),
    );
    return 0;
  } finally {
    stopSaying();
    await opened.cache.close?.();
  }
}
