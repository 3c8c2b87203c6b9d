// Deciding what gc deletes, without touching the cache: pure, so every rule is tested on its own.
import { hashPartOf } from '../nix/store-path.js';
import { deletionWaves, type ReferenceGraph } from './deletion-order.js';
import { narUrlOf, type CacheInventory } from './inventory.js';
import { addClosure, closureBeyond, Referrers } from './path-graph.js';
import type { PathTable } from './path-table.js';
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
  /** 1 for each row of inventory.paths that stays. */
  live: Uint8Array;
  /** How many paths stay. */
  liveCount: number;
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
export function storedBytes(row: number, inventory: CacheInventory): number {
  const { paths, nars } = inventory;
  const narIndex = paths.narIndex(row);
  return (narIndex >= 0 ? nars.size(narIndex) : (paths.fileSize(row) ?? 0)) + paths.narInfoSize(row);
}

/** The rows of `paths` as a graph for deletionWaves, named by hash part. */
export function referenceGraph(paths: PathTable): ReferenceGraph {
  const referrers = new Referrers(paths);
  return {
    count: paths.count,
    references: (row) => paths.references(row),
    referrers: (row) => referrers.of(row),
    name: (row) => paths.hashPart(row),
  };
}

/** Where the closures of the pins' live revisions have holes (see GcPlan.pinGaps). */
export function findPinGaps(paths: PathTable, pins: readonly Pin[], now: Date): PinGap[] {
  const gaps = new Map<string, PinGap>();
  const add = (gap: PinGap): void => void (gaps.has(`${gap.pin} ${gap.missing}`) || gaps.set(`${gap.pin} ${gap.missing}`, gap));
  for (const pin of pins) {
    const roots = liveRevisions(pin, now).map((revision) => revision.storePath);
    for (const root of roots) if (!paths.has(hashPartOf(root))) add({ pin: pin.name, missing: root });
    const closure = addClosure(
      paths,
      roots.map((root) => paths.indexOf(hashPartOf(root))),
      new Uint8Array(paths.count),
    );
    for (const row of closure) {
      for (const target of paths.references(row)) {
        if (!paths.isPresent(target)) add({ pin: pin.name, missing: paths.storePath(target), referrer: paths.storePath(row) });
      }
    }
  }
  return [...gaps.values()];
}

export function planGc(inventory: CacheInventory, pins: readonly Pin[], policy: GcPolicy): GcPlan {
  const { paths, nars } = inventory;
  const roots: number[] = [];
  for (const pin of pins) for (const revision of liveRevisions(pin, policy.now)) roots.push(paths.indexOf(hashPartOf(revision.storePath)));
  if (policy.olderThanMs !== undefined) {
    const cutoff = policy.now.getTime() - policy.olderThanMs;
    for (const row of paths.rows()) if (paths.pushedAt(row) > cutoff) roots.push(row);
  }
  const live = new Uint8Array(paths.count);
  let liveCount = 0;
  let keptBytes = 0;
  for (const row of addClosure(paths, roots, live)) {
    liveCount++;
    keptBytes += storedBytes(row, inventory);
  }

  if (policy.maxSizeBytes !== undefined) {
    // Newest first; a closure that does not fit is skipped and older ones that fit still stay, so
    // one big recent path does not empty the cache. Live rows are closed under references, so a
    // candidate's closure outside them is all it would add.
    const candidates = [...paths.rows()].filter((row) => live[row] !== 1).sort((a, b) => paths.pushedAt(b) - paths.pushedAt(a));
    const seen = new Uint32Array(paths.count);
    let stamp = 0;
    for (const candidate of candidates) {
      if (live[candidate] === 1) continue;
      const added = closureBeyond(paths, candidate, live, seen, ++stamp);
      const addedBytes = added.reduce((sum, row) => sum + storedBytes(row, inventory), 0);
      if (keptBytes + addedBytes > policy.maxSizeBytes) continue;
      for (const row of added) live[row] = 1;
      liveCount += added.length;
      keptBytes += addedBytes;
    }
  }

  const doomed: number[] = [];
  for (const row of paths.rows()) if (live[row] !== 1) doomed.push(row);
  const waves = deletionWaves(doomed, referenceGraph(paths));
  let freedBytes = 0;
  for (const row of doomed) freedBytes += storedBytes(row, inventory);

  // Which NAR files a path that stays, or any path, names (by row of the NAR table).
  const namedByLive = new Uint8Array(nars.count);
  const namedByAny = new Uint8Array(nars.count);
  for (const row of paths.rows()) {
    const narIndex = paths.narIndex(row);
    if (narIndex < 0) continue;
    namedByAny[narIndex] = 1;
    if (live[row] === 1) namedByLive[narIndex] = 1;
  }
  const narsOfDeleted = new Set<string>();
  for (const row of doomed) {
    const narIndex = paths.narIndex(row);
    if (narIndex >= 0 && namedByLive[narIndex] !== 1) narsOfDeleted.add(narUrlOf(inventory, row));
  }
  // An unreadable narinfo may name any NAR: while one exists, no NAR counts as unnamed.
  const orphansAllowed = inventory.unreadable.length === 0;
  const orphanNars: string[] = [];
  if (orphansAllowed) {
    for (let narIndex = 0; narIndex < nars.count; narIndex++) {
      if (namedByAny[narIndex] === 1) continue;
      if (policy.now.getTime() - nars.modified(narIndex) < policy.graceMs) continue;
      orphanNars.push(nars.name(narIndex));
      freedBytes += nars.size(narIndex);
    }
  }
  return {
    live,
    liveCount,
    waves: waves.map((wave) => wave.map((row) => paths.hashPart(row))),
    narsOfDeleted: [...narsOfDeleted].sort(),
    orphanNars: orphanNars.sort(),
    pinGaps: findPinGaps(paths, pins, policy.now),
    keptBytes,
    freedBytes,
  };
}
