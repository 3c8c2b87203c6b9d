// How a file cache stores a NAR: under `nar/` in the cache, by renaming a file staged beside it.
import { renameSync } from 'node:fs';
import { join } from 'node:path';

/** Renames a NAR staged in the cache's own folder to its final name; returns that name. */
export function placeNarInFileCache(root: string, stagedPath: string, narUrl: string): string {
  const narPath = join(root, narUrl);
  if (stagedPath !== narPath) renameSync(stagedPath, narPath);
  return narPath;
}
