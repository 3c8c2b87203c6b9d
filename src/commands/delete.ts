import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { deletePaths } from '../maintain/delete-paths.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { formatBytes } from '../util/quantities.js';

export interface DeleteOptions {
  recursive?: boolean;
}

/** `cachix delete CACHE PATH... [--recursive]`: the store paths that went on stdout, one a line. */
export async function run(context: Context, cacheName: string, paths: string[], options: DeleteOptions): Promise<number> {
  const storePaths = await resolveStorePaths(paths);
  const opened = await openCache(cacheName, context);
  try {
    const log = (line: string): void => context.log(line);
    const { inventory, removal } = await deletePaths(opened.cache, storePaths, { recursive: options.recursive ?? false, log });
    for (const hashPart of removal.deleted) context.stdout.write(`${inventory.paths.get(hashPart)!.info.storePath}\n`);
    if (removal.kept.length > 0) log(`${removal.kept.length} path(s) kept because a push running meanwhile needs them`);
    log(
      `deleted ${removal.deleted.length} path(s) and ${removal.nars.length} NAR file(s), freeing ${formatBytes(removal.narBytes + removal.narInfoBytes)}`,
    );
    return 0;
  } finally {
    await opened.cache.close?.();
  }
}
