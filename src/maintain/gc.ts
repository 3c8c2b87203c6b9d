// `gc`: keep the closures of live pins and of recent pushes (and, under a size cap, the newest
// paths that fit); delete the rest safely (remove-paths.ts), then NARs nobody names.
import type { BinaryCache } from '../caches/cache.js';
import { requireMaintenance } from './capabilities.js';
import { planGc, type GcPlan, type GcPolicy } from './gc-plan.js';
import { takeInventory, type CacheInventory } from './inventory.js';
import { readPins } from './pins.js';
import { removePaths, type RemovalHooks, type RemovalResult } from './remove-paths.js';

/** Default grace for unnamed NARs: far longer than any push takes between a NAR and its narinfo. */
export const DEFAULT_GRACE_MS = 60 * 60 * 1000;

export interface GcOutcome {
  inventory: CacheInventory;
  plan: GcPlan;
  /** Undefined for a dry run. */
  removal?: RemovalResult | undefined;
}

export async function collectGarbage(
  cache: BinaryCache,
  policy: Omit<GcPolicy, 'now'>,
  options: { dryRun: boolean } & RemovalHooks,
): Promise<GcOutcome> {
  // Both capabilities are checked before anything is read, so a cache we cannot delete from is refused untouched.
  const maintainable = requireMaintenance(cache);
  const inventory = await takeInventory(maintainable, options.log);
  const pins = await readPins(maintainable);
  const plan = planGc(inventory, pins, { ...policy, now: new Date() });
  if (options.dryRun) return { inventory, plan };
  const removal = await removePaths(maintainable, inventory, plan.waves, plan.orphanNars, options);
  return { inventory, plan, removal };
}
