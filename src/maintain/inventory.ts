// What a cache holds, read once: every narinfo (what info, gc and delete use of it, in a compact
// PathTable), every NAR file, every pin file, with the sizes and dates the server's listing gives.
// info, gc and delete all start from this.
import { open } from 'node:fs/promises';
import type { ListedFile } from '../caches/cache.js';
import { messageOf } from '../errors.js';
import { MAX_NARINFO_BYTES, parseNarInfo } from '../nix/narinfo.js';
import { hashPartOf, HASH_PART_LENGTH } from '../nix/store-path.js';
import { isBase32 } from '../nix/base32.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { readLimited } from '../util/read-limited.js';
import type { ListableCache } from './capabilities.js';
import { NarInfoTexts } from './narinfo-texts.js';
import { NarTable } from './nar-table.js';
import { PathTable } from './path-table.js';

/** Narinfos fetched at once: each is one small GET (or a file read). */
const READ_CONCURRENCY = 32;

const tooLarge = (): Error => new Error('larger than any real narinfo');

export interface CacheInventory {
  /** One row per hash part; present rows have a readable narinfo. */
  paths: PathTable;
  /** Narinfos that could not be read or parsed (Nix cannot use them either); left alone. */
  unreadable: Array<{ name: string; problem: string }>;
  /** Files under nar/ (`nar/…`), including leftovers of killed uploads. */
  nars: NarTable;
  /** Files of the root that are neither narinfos nor `<hash>.ls` listings (nix-cache-info and the like). */
  otherFiles: ListedFile[];
  /** Bytes of every root file that is not a narinfo, listings included. */
  otherBytes: number;
  /** Rows (of `paths`) that have a `<hash>.ls` listing in the root. */
  listings: Set<number>;
  /** The narinfo texts as read, kept when asked (what gc puts back if a racing push needs it). */
  texts?: NarInfoTexts | undefined;
  /** When the listing began: anything written after may be missing from it. */
  listedAt: Date;
}

export interface InventoryOptions {
  log?: (line: string) => void;
  /** Keep each narinfo's text and deriver: for deleting (remove-paths.ts, path-extras.ts), not for reading. */
  forRemoval?: boolean;
  /** Keep each narinfo's text (deflated) without the rest of forRemoval: for copying them whole. */
  keepTexts?: boolean;
}

/** `<32 base32 chars>.narinfo`: the only root files that are narinfos. */
export function narInfoHashPart(name: string): string | undefined {
  return hashPartWithSuffix(name, '.narinfo');
}

function hashPartWithSuffix(name: string, suffix: string): string | undefined {
  if (!name.endsWith(suffix) || name.length !== HASH_PART_LENGTH + suffix.length) return undefined;
  const hashPart = name.slice(0, HASH_PART_LENGTH);
  return isBase32(hashPart) ? hashPart : undefined;
}

/** A narinfo's text, or undefined when it is gone. */
async function readNarInfoText(cache: ListableCache, name: string): Promise<string | undefined> {
  // A local file is read whole at once: a stream would take a 64 KiB buffer for each small file.
  if (cache.localFile) {
    const path = await cache.localFile(name);
    if (path === undefined) return undefined;
    let file;
    try {
      file = await open(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      if ((await file.stat()).size > MAX_NARINFO_BYTES) throw tooLarge();
      return await file.readFile('utf8');
    } finally {
      await file.close();
    }
  }
  const stream = await cache.getFile(name);
  if (!stream) return undefined;
  return readLimited(stream, MAX_NARINFO_BYTES, tooLarge);
}

function narTableOf(files: readonly ListedFile[]): NarTable {
  const nars = new NarTable();
  for (const file of files) nars.add(file);
  return nars;
}

export async function takeInventory(cache: ListableCache, options: InventoryOptions = {}): Promise<CacheInventory> {
  const listedAt = new Date();
  const paths = new PathTable();
  const listings = new Set<number>();
  const otherFiles: ListedFile[] = [];
  let otherBytes = 0;
  /** Rows of the listed narinfos, in listing order: what is read next. */
  const listed: number[] = [];
  // Each listing is turned into columns as it arrives, so its objects are garbage before the reads.
  const takeRoot = (rootFiles: ListedFile[]): void => {
    for (const file of rootFiles) {
      const hashPart = narInfoHashPart(file.name);
      if (hashPart) {
        const row = paths.row(hashPart);
        paths.setListed(row, file.modified.getTime(), file.size);
        listed.push(row);
        continue;
      }
      otherBytes += file.size;
      const listingOf = hashPartWithSuffix(file.name, '.ls');
      if (listingOf) listings.add(paths.row(listingOf));
      else otherFiles.push(file);
    }
  };
  // One listing at a time: the listed objects of a folder of a million files take hundreds of MB.
  const nars = narTableOf(await cache.list('nar/'));
  takeRoot(await cache.list(''));
  const inventory: CacheInventory = {
    paths,
    unreadable: [],
    nars,
    otherFiles,
    otherBytes,
    listings,
    texts: options.forRemoval || options.keepTexts ? new NarInfoTexts() : undefined,
    listedAt,
  };
  if (listed.length > 1000) options.log?.(`reading ${listed.length} narinfos from ${cache.description}`);
  await forEachConcurrently(listed, READ_CONCURRENCY, async (row) => {
    const hashPart = paths.hashPart(row);
    const name = `${hashPart}.narinfo`;
    let text: string | undefined;
    try {
      text = await readNarInfoText(cache, name);
    } catch (error) {
      inventory.unreadable.push({ name, problem: messageOf(error) });
      return;
    }
    // Deleted between the listing and the read (another gc): it is simply not there.
    if (text === undefined) return;
    try {
      const info = parseNarInfo(text);
      if (hashPartOf(info.storePath) !== hashPart) throw new Error(`it describes ${info.storePath}`);
      paths.setPresent(row, {
        info,
        pushedAt: paths.pushedAt(row),
        narInfoSize: paths.narInfoSize(row) || text.length,
        narIndex: nars.indexOf(info.url),
        keepDeriver: options.forRemoval ?? false,
      });
      inventory.texts?.add(row, text);
    } catch (error) {
      inventory.unreadable.push({ name, problem: messageOf(error) });
    }
  });
  inventory.unreadable.sort((a, b) => (a.name < b.name ? -1 : 1));
  return inventory;
}

/** The URL of a present row's NAR, as its narinfo gives it. */
export function narUrlOf(inventory: CacheInventory, row: number): string {
  const narIndex = inventory.paths.narIndex(row);
  return narIndex >= 0 ? inventory.nars.name(narIndex) : inventory.paths.unlistedUrl(row)!;
}
