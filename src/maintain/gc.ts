// `gc`: keep the closures of live pins and of recent pushes (and, under a size cap, the newest
// paths that fit); delete the rest safely (remove-paths.ts), then NARs nobody names.
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { requireMaintenance } from './capabilities.js';
import { planGc, type GcPlan, type GcPolicy, type PinGap } from './gc-plan.js';
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

export interface GcOptions extends RemovalHooks {
  dryRun: boolean;
  /** Delete even when a pin's closure has a gap (GcPlan.pinGaps): what lay below it may go. */
  acceptPinGaps: boolean;
  /** The cache as the user named it, shell-quoted, for hints. */
  cacheArgument: string;
}

/** "pin 'release' needs /nix/store/…-b (referred to by /nix/store/…-c), which has no readable narinfo". */
export function describePinGap(gap: PinGap): string {
  const where = gap.referrer ? ` (referred to by ${gap.referrer})` : ' (its pinned path)';
  return `pin '${gap.pin}' needs ${gap.missing}${where}, which has no readable narinfo`;
}

function pinGapError(cache: BinaryCache, gaps: readonly PinGap[], cacheArgument: string): UserError {
  const [first] = gaps;
  const more = gaps.length > 1 ? ` (and ${gaps.length - 1} more gap(s))` : '';
  return new UserError(
    `${describePinGap(first!)} in ${cache.description}${more}: gc cannot know what lies below it and deleted nothing`,
    `push that path again (cachix push ${cacheArgument} ${first!.missing}), or delete the pin (cachix pin ${cacheArgument} ${first!.pin} --delete); ` +
      `--accept-pin-gaps deletes whatever else nothing keeps, including what lay below the gap (see it first with --dry-run)`,
  );
}

export async function collectGarbage(cache: BinaryCache, policy: Omit<GcPolicy, 'now'>, options: GcOptions): Promise<GcOutcome> {
  // Both capabilities are checked before anything is read, so a cache we cannot delete from is refused untouched.
  const maintainable = requireMaintenance(cache);
  const inventory = await takeInventory(maintainable, { log: options.log, forRemoval: !options.dryRun });
  const pins = await readPins(maintainable, options.cacheArgument);
  const plan = planGc(inventory, pins, { ...policy, now: new Date() });
  if (plan.pinGaps.length > 0 && !options.dryRun && !options.acceptPinGaps) throw pinGapError(cache, plan.pinGaps, options.cacheArgument);
  if (options.dryRun) return { inventory, plan };
  const removal = await removePaths(maintainable, inventory, plan.waves, plan.orphanNars, options);
  return { inventory, plan, removal };
}
