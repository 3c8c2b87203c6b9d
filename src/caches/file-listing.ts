// Listing, deleting and whole-file writes for a cache in a local directory (see FileCache).
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { fsErrorToUser } from '../errors.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import type { ListedFile } from './cache.js';

/** stat() calls in flight while listing: enough to hide the thread pool's latency, no more. */
const STAT_CONCURRENCY = 32;

/** The absolute path of a cache file, refusing names that climb out of the cache root. */
export function pathInCache(root: string, relative: string): string {
  const absolute = resolve(root, relative);
  if (absolute !== root && !absolute.startsWith(root.endsWith(sep) ? root : root + sep)) {
    throw new Error(`'${relative}' is not inside the cache at ${root}`);
  }
  return absolute;
}

function permissionError(error: unknown, root: string, doing: string): never {
  throw fsErrorToUser(error, { path: root, name: `the cache at ${root}`, doing });
}

export async function listDirectory(root: string, folder: string): Promise<ListedFile[]> {
  const directory = pathInCache(root, folder);
  let entries;
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    permissionError(error, root, 'list');
  }
  const files: ListedFile[] = [];
  await forEachConcurrently(
    entries.filter((entry) => entry.isFile()),
    STAT_CONCURRENCY,
    async (entry) => {
      try {
        const info = await stat(join(directory, entry.name));
        files.push({ name: folder + entry.name, size: info.size, modified: info.mtime });
      } catch (error) {
        // Gone between readdir and stat: a concurrent gc or a push's rename; it is not there.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    },
  );
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** True when this call removed the file; false when it was already gone (another gc won). */
export async function deleteCacheFile(root: string, relative: string): Promise<boolean> {
  try {
    await unlink(pathInCache(root, relative));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    permissionError(error, root, 'delete from');
  }
}

/** Written under a temporary name beside it, then renamed: readers see the old or the new file. */
export async function putCacheFile(root: string, relative: string, text: string | Uint8Array): Promise<void> {
  const path = pathInCache(root, relative);
  try {
    await mkdir(dirname(path), { recursive: true });
    writeFileAtomicallySync(path, text);
  } catch (error) {
    permissionError(error, root, 'write to');
  }
}
