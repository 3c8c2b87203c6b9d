// Deciding what gc deletes, without touching the cache: pure, so every rule is tested on its own.
import { hashPartOf } from '../nix/store-path.js';
import { deletionWaves } from './deletion-order.js';
import { closureOf, referrersOf, type CacheInventory, type StoredPath } from './inventory.js';
import { liveRevisions, type Pin } from './pin-file.js';

export interface GcPolicy {
  now: Date;
  /** Paths pushed less than this long ago stay, with their closures. */
  olderThanMs?: number | undefined;
  /** Then the newest paths (with closures) that fit in this many stored bytes stay too. */
  maxSizeBytes?: number | undefined;
  /** A NAR no narinfo names is deleted only when older than this: a push writes its NAR first. */
  graceMs: number;
}

export interface PinGap {
  pin: string;
  /** The store path without a readable narinfo. */
  missing: string;
  /** The path of the pin's closure that refers to it; undefined when the pinned path itself is missing. */
  referrer?: string | undefined;
}

export interface GcPlan {
  /** Hash parts of the paths that stay. */
  live: Set<string>;
  /** Hash parts to delete, in waves: referrers before their references. */
  waves: string[][];
  /** NAR files named only by deleted paths, deleted after their narinfos. */
  narsOfDeleted: string[];
  /** NAR files no narinfo names, older than the grace period (and leftovers of killed uploads). */
  orphanNars: string[];
  /**
   * Paths a live pin's closure needs that have no readable narinfo: the pinned path itself, or a
   * reference of a path in its closure. What lies below such a gap cannot be known, so gc refuses
   * to run while any exists unless told to accept the risk.
   */
  pinGaps: PinGap[];
  /** Stored bytes (NAR files and narinfos) of what stays. */
  keptBytes: number;
  /** Stored bytes of what goes. */
  freedBytes: number;
}

/** What one path costs in the cache: its NAR file (as listed, else FileSize) and its narinfo. */
export function storedBytes(path: StoredPath, inventory: CacheInventory): number {
  const listed = inventory.nars.get(path.info.url);
  return (listed?.size ?? path.info.fileSize ?? 0) + path.narInfoSize;
}

/** Where the closures of the pins' live revisions have holes (see GcPlan.pinGaps). */
export function findPinGaps(paths: CacheInventory['paths'], pins: readonly Pin[], now: Date): PinGap[] {
  const gaps = new Map<string, PinGap>();
  const add = (gap: PinGap): void => void (gaps.has(`${gap.pin} ${gap.missing}`) || gaps.set(`${gap.pin} ${gap.missing}`, gap));
  for (const pin of pins) {
    const roots = liveRevisions(pin, now).map((revision) => revision.storePath);
    for (const root of roots) if (!paths.has(hashPartOf(root))) add({ pin: pin.name, missing: root });
    for (const hashPart of closureOf(roots.map(hashPartOf), paths)) {
      const path = paths.get(hashPart)!;
      for (const reference of path.info.references) {
        if (!paths.has(hashPartOf(reference))) add({ pin: pin.name, missing: reference, referrer: path.info.storePath });
      }
    }
  }
  return [...gaps.values()];
}

export function planGc(inventory: CacheInventory, pins: readonly Pin[], policy: GcPolicy): GcPlan {
  const { paths } = inventory;
  const roots: string[] = [];
  for (const pin of pins) for (const revision of liveRevisions(pin, policy.now)) roots.push(hashPartOf(revision.storePath));
  if (policy.olderThanMs !== undefined) {
    const cutoff = policy.now.getTime() - policy.olderThanMs;
    for (const [hashPart, path] of paths) if (path.pushedAt.getTime() > cutoff) roots.push(hashPart);
  }
  const live = closureOf(roots, paths);
  let keptBytes = 0;
  for (const hashPart of live) keptBytes += storedBytes(paths.get(hashPart)!, inventory);

  if (policy.maxSizeBytes !== undefined) {
    // Newest first; a closure that does not fit is skipped and older ones that fit still stay, so
    // one big recent path does not empty the cache.
    const candidates = [...paths.values()]
      .filter((path) => !live.has(path.hashPart))
      .sort((a, b) => b.pushedAt.getTime() - a.pushedAt.getTime());
    for (const candidate of candidates) {
      if (live.has(candidate.hashPart)) continue;
      const added = [...closureOf([candidate.hashPart], paths)].filter((hashPart) => !live.has(hashPart));
      const addedBytes = added.reduce((sum, hashPart) => sum + storedBytes(paths.get(hashPart)!, inventory), 0);
      if (keptBytes + addedBytes > policy.maxSizeBytes) continue;
      for (const hashPart of added) live.add(hashPart);
      keptBytes += addedBytes;
    }
  }

  const doomed = new Set([...paths.keys()].filter((hashPart) => !live.has(hashPart)));
  const waves = deletionWaves(doomed, referrersOf(paths));
  let freedBytes = 0;
  for (const hashPart of doomed) freedBytes += storedBytes(paths.get(hashPart)!, inventory);

  const namedByLive = new Set([...live].map((hashPart) => paths.get(hashPart)!.info.url));
  const namedByAny = new Set([...paths.values()].map((path) => path.info.url));
  // An unreadable narinfo may name any NAR: while one exists, no NAR counts as unnamed.
  const orphansAllowed = inventory.unreadable.length === 0;
  const narsOfDeleted = [...new Set([...doomed].map((hashPart) => paths.get(hashPart)!.info.url))].filter(
    (url) => !namedByLive.has(url) && inventory.nars.has(url),
  );
  const orphanNars: string[] = [];
  if (orphansAllowed) {
    for (const nar of inventory.nars.values()) {
      if (namedByAny.has(nar.name)) continue;
      if (policy.now.getTime() - nar.modified.getTime() < policy.graceMs) continue;
      orphanNars.push(nar.name);
      freedBytes += nar.size;
    }
  }
  return {
    live,
    waves,
    narsOfDeleted: narsOfDeleted.sort(),
    orphanNars: orphanNars.sort(),
    pinGaps: findPinGaps(paths, pins, policy.now),
    keptBytes,
    freedBytes,
  };
}
