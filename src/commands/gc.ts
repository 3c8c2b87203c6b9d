import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { collectGarbage, DEFAULT_GRACE_MS } from '../maintain/gc.js';
import { formatBytes, parseDuration, parseSize } from '../util/quantities.js';

export interface GcOptions {
  olderThan?: string;
  maxSize?: string;
  grace?: string;
  dryRun?: boolean;
}

function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const parsed = parseDuration(text);
  if (parsed === undefined)
    throw new UserError(`${flag} '${text}' is not a duration`, 'write it as 0, 45m, 12h, 30d or 2w (units may be combined: 1d12h)', 2);
  return parsed;
}

/**
 * `cachix gc CACHE [--older-than D] [--max-size S] [--dry-run]`: the store paths deleted on
 * stdout, one a line (those it would delete, with --dry-run); what was freed on stderr.
 */
export async function run(context: Context, cacheName: string, options: GcOptions): Promise<number> {
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
      'e.g. cachix gc CACHE --older-than 30d (add --dry-run to see what would go)',
      2,
    );
  }
  const opened = await openCache(cacheName, context);
  try {
    const log = (line: string): void => context.log(line);
    const { inventory, plan, removal } = await collectGarbage(
      opened.cache,
      { olderThanMs, maxSizeBytes, graceMs },
      { dryRun: options.dryRun ?? false, log },
    );
    for (const missing of plan.missingPinned) log(`warning: pin '${missing.pin}' names ${missing.storePath}, which is not in the cache`);
    if (inventory.unreadable.length > 0)
      log(
        `warning: ${inventory.unreadable.length} narinfo(s) cannot be read; they and any NAR not named elsewhere are left alone (see cachix info)`,
      );
    const doomed = plan.waves.flat();
    if (!removal) {
      for (const hashPart of doomed) context.stdout.write(`${inventory.paths.get(hashPart)!.info.storePath}\n`);
      for (const nar of plan.orphanNars) context.stdout.write(`${nar}\n`);
      log(
        `dry run: would delete ${doomed.length} of ${inventory.paths.size} paths, ${plan.narsOfDeleted.length} NAR file(s) of theirs and ${plan.orphanNars.length} unnamed NAR(s), freeing ${formatBytes(plan.freedBytes)}; ${plan.live.size} paths (${formatBytes(plan.keptBytes)}) stay`,
      );
      return 0;
    }
    for (const hashPart of removal.deleted) context.stdout.write(`${inventory.paths.get(hashPart)!.info.storePath}\n`);
    if (removal.kept.length > 0) log(`${removal.kept.length} path(s) kept because a push running meanwhile needs them`);
    log(
      `deleted ${removal.deleted.length} of ${inventory.paths.size} paths and ${removal.nars.length} NAR file(s), freeing ${formatBytes(removal.narBytes + removal.narInfoBytes)}; ${inventory.paths.size - removal.deleted.length} paths stay`,
    );
    return 0;
  } finally {
    await opened.cache.close?.();
  }
}
