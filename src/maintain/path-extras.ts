// What push writes beside a path (`<hash>.ls`, `debuginfo/` entries, `log/<drv>`) goes when the
// path goes: a listing with its narinfo, a debug-info entry with the NAR it points into, a build
// log once no narinfo left names its deriver.
import { messageOf } from '../errors.js';
import { parseDebugInfoJson } from '../nix/nar/listing.js';
import { readLimited } from '../util/read-limited.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import type { MaintainableCache } from './capabilities.js';
import type { CacheInventory } from './inventory.js';

const DELETE_CONCURRENCY = 16;
const MAX_DEBUG_INFO_BYTES = 64 * 1024;

export interface ExtrasRemoved {
  listings: number;
  debugInfo: number;
  logs: number;
}

async function archiveOf(cache: MaintainableCache, name: string): Promise<string | undefined> {
  const stream = await cache.getFile(name);
  if (!stream) return undefined;
  try {
    return parseDebugInfoJson(await readLimited(stream, MAX_DEBUG_INFO_BYTES, () => new Error('too large')))?.archive;
  } catch {
    return undefined;
  }
}

export async function removePathExtras(
  cache: MaintainableCache,
  inventory: CacheInventory,
  removed: { deleted: readonly string[]; nars: readonly string[] },
  log: (line: string) => void = () => undefined,
): Promise<ExtrasRemoved> {
  const result: ExtrasRemoved = { listings: 0, debugInfo: 0, logs: 0 };
  const remove = async (name: string, kind: keyof ExtrasRemoved): Promise<void> => {
    try {
      if (await cache.deleteFile(name)) result[kind]++;
    } catch (error) {
      log(`could not delete ${name}: ${messageOf(error)}`);
    }
  };
  const { paths } = inventory;
  const deleted = new Set(removed.deleted);
  await forEachConcurrently(
    removed.deleted.filter((hashPart) => inventory.listings.has(paths.indexOf(hashPart))),
    DELETE_CONCURRENCY,
    (hashPart) => remove(`${hashPart}.ls`, 'listings'),
  );
  const goneNars = new Set(removed.nars.map((nar) => `../${nar}`));
  if (goneNars.size > 0) {
    const entries = await cache.list('debuginfo/');
    await forEachConcurrently(entries, DELETE_CONCURRENCY, async (entry) => {
      const archive = await archiveOf(cache, entry.name);
      if (archive !== undefined && goneNars.has(archive)) await remove(entry.name, 'debugInfo');
    });
  }
  if (deleted.size > 0) {
    const namedDerivers = new Set<string>();
    for (const row of paths.rows()) {
      const deriver = paths.deriverName(row);
      if (deriver !== undefined && !deleted.has(paths.hashPart(row))) namedDerivers.add(deriver);
    }
    // A log written after the inventory belongs to a push in flight, whose narinfo came after it.
    const logs = (await cache.list('log/')).filter((file) => file.modified < inventory.listedAt);
    await forEachConcurrently(
      logs.filter((file) => !namedDerivers.has(file.name.slice('log/'.length))),
      DELETE_CONCURRENCY,
      (file) => remove(file.name, 'logs'),
    );
  }
  return result;
}
