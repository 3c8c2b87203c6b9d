// `info`: what a cache holds and whether a reader would find it whole.
import type { BinaryCache } from '../caches/cache.js';
import { hashPartOf } from '../nix/store-path.js';
import { requireListing } from './capabilities.js';
import { narInfoHashPart, takeInventory } from './inventory.js';
import { liveRevisions, type Pin } from './pin-file.js';
import { readPins } from './pins.js';

export interface CacheSummary {
  cache: string;
  paths: number;
  /** Sum of NarSize: what the paths take unpacked. */
  narBytes: number;
  /** Every file the listing shows: NARs (named or not), narinfos, pins, nix-cache-info. */
  storedBytes: number;
  /** Paths per Compression. */
  compression: Record<string, number>;
  /** What Nix reads beside the paths: build logs (`log/`), NAR listings (`<hash>.ls`), `debuginfo/` entries. */
  extras: { logs: number; listings: number; debugInfo: number };
  oldestPush: string | null;
  newestPush: string | null;
  pins: Array<{ name: string; storePath: string; pinnedAt: string; keep: Pin['keep']; liveRevisions: number; inCache: boolean }>;
  problems: {
    /** Narinfos whose NAR file is not there: Nix fails substituting them. */
    missingNars: string[];
    /** `<narinfo> -> <reference>` where the reference has no narinfo. */
    missingReferences: string[];
    /** NAR files no narinfo names (a killed push's, or left by an interrupted gc). */
    unnamedNars: string[];
    /** Narinfos that cannot be read or parsed. */
    unreadableNarInfos: string[];
  };
}

/** `<32 base32 chars>.ls`: a path's NAR listing. */
function isListingName(name: string): boolean {
  return name.endsWith('.ls') && narInfoHashPart(`${name.slice(0, -'.ls'.length)}.narinfo`) !== undefined;
}

/** `cacheArgument`: the cache as the user named it, shell-quoted, for hints. */
export async function summarizeCache(cache: BinaryCache, cacheArgument: string, log?: (line: string) => void): Promise<CacheSummary> {
  const listable = requireListing(cache);
  const inventory = await takeInventory(listable, log);
  // After the root's listing, so an HTTP server's way of listing is known and a missing folder is empty.
  const [pins, logFiles, debugInfoFiles] = await Promise.all([
    readPins(listable, cacheArgument),
    listable.list('log/'),
    listable.list('debuginfo/'),
  ]);
  const listingFiles = inventory.otherFiles.filter((file) => isListingName(file.name));
  const summary: CacheSummary = {
    cache: cache.description,
    paths: inventory.paths.size,
    narBytes: 0,
    storedBytes: 0,
    compression: {},
    extras: { logs: logFiles.length, listings: listingFiles.length, debugInfo: debugInfoFiles.length },
    oldestPush: null,
    newestPush: null,
    pins: [],
    problems: {
      missingNars: [],
      missingReferences: [],
      unnamedNars: [],
      unreadableNarInfos: inventory.unreadable.map((entry) => `${entry.name}: ${entry.problem}`),
    },
  };
  let oldest = Infinity;
  let newest = -Infinity;
  const named = new Set<string>();
  for (const path of inventory.paths.values()) {
    summary.narBytes += path.info.narSize;
    summary.compression[path.info.compression] = (summary.compression[path.info.compression] ?? 0) + 1;
    oldest = Math.min(oldest, path.pushedAt.getTime());
    newest = Math.max(newest, path.pushedAt.getTime());
    named.add(path.info.url);
    if (!inventory.nars.has(path.info.url)) summary.problems.missingNars.push(`${path.hashPart}.narinfo -> ${path.info.url}`);
    for (const reference of path.info.references) {
      if (!inventory.paths.has(hashPartOf(reference))) summary.problems.missingReferences.push(`${path.info.storePath} -> ${reference}`);
    }
  }
  for (const nar of inventory.nars.values()) {
    summary.storedBytes += nar.size;
    if (!named.has(nar.name)) summary.problems.unnamedNars.push(nar.name);
  }
  for (const path of inventory.paths.values()) summary.storedBytes += path.narInfoSize;
  for (const file of [...inventory.otherFiles, ...logFiles, ...debugInfoFiles]) summary.storedBytes += file.size;
  const pinFiles = await listable.list('pins/');
  for (const file of pinFiles) summary.storedBytes += file.size;
  if (inventory.paths.size > 0) {
    summary.oldestPush = new Date(oldest).toISOString();
    summary.newestPush = new Date(newest).toISOString();
  }
  const now = new Date();
  for (const pin of pins) {
    const newestRevision = pin.revisions[pin.revisions.length - 1];
    if (!newestRevision) continue;
    summary.pins.push({
      name: pin.name,
      storePath: newestRevision.storePath,
      pinnedAt: newestRevision.pinnedAt.toISOString(),
      keep: pin.keep,
      liveRevisions: liveRevisions(pin, now).length,
      inCache: inventory.paths.has(hashPartOf(newestRevision.storePath)),
    });
  }
  for (const list of Object.values(summary.problems)) list.sort();
  return summary;
}

export function problemCount(summary: CacheSummary): number {
  return Object.values(summary.problems).reduce((sum, list) => sum + list.length, 0);
}
