// Deleting paths from a cache without ever showing a reader an inconsistent cache, shared by gc
// and delete. Killed at any point, what remains is consistent: narinfos go in waves, referrers
// before their references; NAR files go only after every narinfo naming them is gone.
//
// A push racing us can see a narinfo as present, skip it, and then write a narinfo referring to
// it after we deleted it. So after the narinfos are gone we list again: a narinfo that appeared
// meanwhile and refers to a path we deleted gets that path's narinfo (and its closure) put back,
// references first, while its NAR is still there; a path pushed again meanwhile keeps its NAR.
// A push that writes such a narinfo after that second listing, or writes a NAR again in the moment
// between our last listing and our deleting it, is told by the marker file (caches/gc-marker.ts)
// and checks its work again when it ends: complete afterwards, though not at every instant.
import { formatGcMarker, GC_MARKER_FILE } from '../caches/gc-marker.js';
import { messageOf } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import { parseNarInfo } from '../nix/narinfo.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { removePathExtras } from './path-extras.js';
import { holdIfAsked } from '../util/test-hold.js';
import type { MaintainableCache } from './capabilities.js';
import { narInfoHashPart, narUrlOf, type CacheInventory } from './inventory.js';

/** Deletions in flight: enough for a remote server's latency, few enough not to look like an attack. */
const DELETE_CONCURRENCY = 16;

export interface RemovalHooks {
  /**
   * Called after each narinfo is deleted (and again, with restored=true, if it is put back).
   * The place to invalidate any local record of what the cache holds (a "seen in cache" list):
   * after this call the path must be looked up again before a push skips it.
   */
  onNarInfoChanged?(hashPart: string, restored: boolean): void;
  log?(line: string): void;
  /** Kept current while deleting: how many narinfos this process removed (for an interruption's report). */
  tally?: RemovalTally;
}

export interface RemovalTally {
  planned: number;
  deleted: number;
}

/** What a gc or delete stopped by a signal says: how far it got, and that stopping was safe. */
export function interruptedLine(tally: RemovalTally, command: string): string {
  if (tally.planned === 0) return 'interrupted before deleting anything';
  return `interrupted: deleted ${tally.deleted} of ${tally.planned} paths; what remains is consistent; run ${command} again to finish`;
}

export interface RemovalResult {
  /**
   * Hash parts whose narinfo this process removed and that stay gone. A narinfo another process
   * removed first (two gcs at once) is not counted here, so no deletion is reported twice.
   */
  deleted: string[];
  /** Hash parts put back because a racing push referred to them, or pushed again meanwhile. */
  kept: string[];
  nars: string[];
  narBytes: number;
  narInfoBytes: number;
}

async function readNarInfoReferences(cache: MaintainableCache, hashPart: string): Promise<string[]> {
  try {
    const text = await cache.getNarInfo(hashPart);
    if (text === undefined) return [];
    return parseNarInfo(text).references.map(hashPartOf);
  } catch {
    return []; // Nix cannot read it either; it refers to nothing usable.
  }
}

export async function removePaths(
  cache: MaintainableCache,
  inventory: CacheInventory,
  waves: readonly string[][],
  extraNars: readonly string[],
  hooks: RemovalHooks = {},
): Promise<RemovalResult> {
  // Written before the first deletion, rewritten with the end time when done (caches/gc-marker.ts):
  // a push that ends after it checks its work again. Killed midway, it stays unfinished, and
  // pushes keep checking until a gc finishes.
  const startedAt = new Date();
  if (hooks.tally) hooks.tally.planned = waves.reduce((sum, wave) => sum + wave.length, 0);
  await cache.putFile(GC_MARKER_FILE, formatGcMarker({ startedAt }), 'application/json');
  await holdIfAsked('deleting');
  try {
    const result = await removeInOrder(cache, inventory, waves, extraNars, hooks);
    await removePathExtras(cache, inventory, result, hooks.log);
    return result;
  } finally {
    await cache
      .putFile(GC_MARKER_FILE, formatGcMarker({ startedAt, finishedAt: new Date() }), 'application/json')
      .catch((error: unknown) => {
        hooks.log?.(`could not mark the end of this gc in ${GC_MARKER_FILE}: ${messageOf(error)}`);
      });
  }
}

async function removeInOrder(
  cache: MaintainableCache,
  inventory: CacheInventory,
  waves: readonly string[][],
  extraNars: readonly string[],
  hooks: RemovalHooks,
): Promise<RemovalResult> {
  const { paths } = inventory;
  // Gone, whoever removed it (what a racing push may need back); and removed by this process.
  const deleted = new Set<string>();
  const ours = new Set<string>();
  let narInfoBytes = 0;
  for (const wave of waves) {
    await forEachConcurrently(wave, DELETE_CONCURRENCY, async (hashPart) => {
      const removed = await cache.deleteFile(`${hashPart}.narinfo`);
      deleted.add(hashPart);
      if (removed) {
        ours.add(hashPart);
        narInfoBytes += paths.narInfoSize(paths.indexOf(hashPart));
        if (hooks.tally) hooks.tally.deleted++;
      }
      hooks.onNarInfoChanged?.(hashPart, false);
    });
  }

  // What a racing push did while we deleted (see the top of this file).
  const kept = new Set<string>();
  if (deleted.size > 0) {
    const needed: string[] = [];
    for (const file of await cache.list('')) {
      const hashPart = narInfoHashPart(file.name);
      if (!hashPart) continue;
      if (deleted.has(hashPart)) {
        kept.add(hashPart); // pushed again after we deleted it: its NAR is live again
        continue;
      }
      if (paths.has(hashPart) && paths.pushedAt(paths.indexOf(hashPart)) === file.modified.getTime()) continue;
      for (const reference of await readNarInfoReferences(cache, hashPart)) if (deleted.has(reference)) needed.push(reference);
    }
    const restore = new Set<string>();
    while (needed.length > 0) {
      const hashPart = needed.pop()!;
      if (restore.has(hashPart) || kept.has(hashPart)) continue;
      restore.add(hashPart);
      const row = paths.indexOf(hashPart);
      for (const reference of paths.references(row)) {
        const target = paths.hashPart(reference);
        if (reference !== row && deleted.has(target)) needed.push(target);
      }
    }
    if (restore.size > 0) {
      hooks.log?.(`a push wrote narinfos referring to ${restore.size} path(s) being deleted: putting them back`);
      // References first: the reverse of the deletion order.
      for (const wave of [...waves].reverse()) {
        await forEachConcurrently(
          wave.filter((hashPart) => restore.has(hashPart)),
          DELETE_CONCURRENCY,
          async (hashPart) => {
            await cache.putFile(`${hashPart}.narinfo`, inventory.texts!.get(paths.indexOf(hashPart)), 'text/x-nix-narinfo');
            kept.add(hashPart);
            hooks.onNarInfoChanged?.(hashPart, true);
          },
        );
      }
    }
  }

  // NAR files by row of inventory.nars: named by a path that stays, or left by one that went.
  const stillNamed = new Uint8Array(inventory.nars.count);
  const gone = new Uint8Array(paths.count);
  for (const hashPart of deleted) if (!kept.has(hashPart)) gone[paths.indexOf(hashPart)] = 1;
  for (const row of paths.rows()) if (gone[row] !== 1 && paths.narIndex(row) >= 0) stillNamed[paths.narIndex(row)] = 1;
  const candidates = new Set<string>(extraNars);
  for (const hashPart of deleted) if (!kept.has(hashPart)) candidates.add(narUrlOf(inventory, paths.indexOf(hashPart)));
  await holdIfAsked('deleting-nars');
  // A NAR written again since the inventory belongs to a push in flight: its narinfo may follow.
  const current = new Map<string, number>();
  for (const file of await cache.list('nar/')) if (candidates.has(file.name)) current.set(file.name, file.modified.getTime());
  const nars = [...candidates].filter((name) => {
    const before = inventory.nars.indexOf(name);
    return before >= 0 && stillNamed[before] !== 1 && current.get(name) === inventory.nars.modified(before);
  });
  let narBytes = 0;
  const narsRemoved: string[] = [];
  await forEachConcurrently(nars.sort(), DELETE_CONCURRENCY, async (name) => {
    try {
      if (!(await cache.deleteFile(name))) return;
    } catch (error) {
      // Every narinfo is already consistent; a NAR left behind is only space, taken by the next gc.
      hooks.log?.(`could not delete ${name}: ${messageOf(error)}`);
      return;
    }
    narsRemoved.push(name);
    narBytes += inventory.nars.size(inventory.nars.indexOf(name));
  });
  return {
    deleted: [...ours].filter((hashPart) => !kept.has(hashPart)),
    kept: [...kept],
    nars: narsRemoved.sort(),
    narBytes,
    narInfoBytes,
  };
}
