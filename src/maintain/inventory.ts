// What a cache holds, read once: every narinfo (parsed), every NAR file, every pin file, with the
// sizes and dates the server's listing gives. info, gc and delete all start from this.
import type { ListedFile } from '../caches/cache.js';
import { messageOf } from '../errors.js';
import { MAX_NARINFO_BYTES, parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf, HASH_PART_LENGTH } from '../nix/store-path.js';
import { isBase32 } from '../nix/base32.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { readLimited } from '../util/read-limited.js';
import type { ListableCache } from './capabilities.js';

/** Narinfos fetched at once: each is one small GET (or a file read). */
const READ_CONCURRENCY = 32;

export interface StoredPath {
  hashPart: string;
  info: NarInfo;
  /** The narinfo's text exactly as stored: what gc puts back if a racing push needs it. */
  text: string;
  /** When its narinfo was written: when it was pushed. */
  pushedAt: Date;
  narInfoSize: number;
}

export interface CacheInventory {
  /** By store path hash part. */
  paths: Map<string, StoredPath>;
  /** Narinfos that could not be read or parsed (Nix cannot use them either); left alone. */
  unreadable: Array<{ name: string; problem: string }>;
  /** Files under nar/ by name (`nar/…`), including leftovers of killed uploads. */
  nars: Map<string, ListedFile>;
  /** Every file of the root that is not a narinfo (nix-cache-info and the like). */
  otherFiles: ListedFile[];
  /** When the listing began: anything written after may be missing from it. */
  listedAt: Date;
}

/** `<32 base32 chars>.narinfo`: the only root files that are narinfos. */
export function narInfoHashPart(name: string): string | undefined {
  if (!name.endsWith('.narinfo') || name.length !== HASH_PART_LENGTH + '.narinfo'.length) return undefined;
  const hashPart = name.slice(0, HASH_PART_LENGTH);
  return isBase32(hashPart) ? hashPart : undefined;
}

async function readNarInfoText(cache: ListableCache, name: string): Promise<string | undefined> {
  const stream = await cache.getFile(name);
  if (!stream) return undefined;
  return readLimited(stream, MAX_NARINFO_BYTES, () => new Error('larger than any real narinfo'));
}

export async function takeInventory(cache: ListableCache, log: (line: string) => void = () => undefined): Promise<CacheInventory> {
  const listedAt = new Date();
  const [rootFiles, narFiles] = await Promise.all([cache.list(''), cache.list('nar/')]);
  const inventory: CacheInventory = {
    paths: new Map(),
    unreadable: [],
    nars: new Map(narFiles.map((file) => [file.name, file])),
    otherFiles: [],
    listedAt,
  };
  const narInfoFiles: Array<{ file: ListedFile; hashPart: string }> = [];
  for (const file of rootFiles) {
    const hashPart = narInfoHashPart(file.name);
    if (hashPart) narInfoFiles.push({ file, hashPart });
    else inventory.otherFiles.push(file);
  }
  if (narInfoFiles.length > 1000) log(`reading ${narInfoFiles.length} narinfos from ${cache.description}`);
  await forEachConcurrently(narInfoFiles, READ_CONCURRENCY, async ({ file, hashPart }) => {
    let text: string | undefined;
    try {
      text = await readNarInfoText(cache, file.name);
    } catch (error) {
      inventory.unreadable.push({ name: file.name, problem: messageOf(error) });
      return;
    }
    // Deleted between the listing and the read (another gc): it is simply not there.
    if (text === undefined) return;
    try {
      const info = parseNarInfo(text);
      if (hashPartOf(info.storePath) !== hashPart) throw new Error(`it describes ${info.storePath}`);
      inventory.paths.set(hashPart, { hashPart, info, text, pushedAt: file.modified, narInfoSize: file.size || text.length });
    } catch (error) {
      inventory.unreadable.push({ name: file.name, problem: messageOf(error) });
    }
  });
  inventory.unreadable.sort((a, b) => (a.name < b.name ? -1 : 1));
  return inventory;
}

/** For each path, the paths in the inventory whose narinfo lists it as a reference (self excluded). */
export function referrersOf(paths: ReadonlyMap<string, StoredPath>): Map<string, Set<string>> {
  const referrers = new Map<string, Set<string>>();
  for (const [hashPart, path] of paths) {
    for (const reference of path.info.references) {
      const target = hashPartOf(reference);
      if (target === hashPart) continue;
      let set = referrers.get(target);
      if (!set) referrers.set(target, (set = new Set()));
      set.add(hashPart);
    }
  }
  return referrers;
}

/** The hash parts of the closures of `roots` within the inventory (references it lacks are skipped). */
export function closureOf(roots: Iterable<string>, paths: ReadonlyMap<string, StoredPath>): Set<string> {
  const closure = new Set<string>();
  const stack = [...roots].filter((hashPart) => paths.has(hashPart));
  while (stack.length > 0) {
    const hashPart = stack.pop()!;
    if (closure.has(hashPart)) continue;
    closure.add(hashPart);
    for (const reference of paths.get(hashPart)!.info.references) {
      const target = hashPartOf(reference);
      if (!closure.has(target) && paths.has(target)) stack.push(target);
    }
  }
  return closure;
}
