// `delete`: remove named paths; a path another remaining path refers to is refused unless
// recursive, which takes its referrers too. Nothing is deleted when any request is refused.
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import { requireMaintenance } from './capabilities.js';
import { deletionWaves } from './deletion-order.js';
import { closureOf, referrersOf, takeInventory, type CacheInventory } from './inventory.js';
import { liveRevisions } from './pin-file.js';
import { readPins } from './pins.js';
import { removePaths, type RemovalHooks, type RemovalResult } from './remove-paths.js';

export interface DeletionOutcome {
  inventory: CacheInventory;
  /** Hash parts that go, in the order they go. */
  waves: string[][];
  /** Undefined for a dry run. */
  removal?: RemovalResult | undefined;
}

export interface DeletionOptions extends RemovalHooks {
  recursive: boolean;
  /** Decide and report what would go, change nothing. */
  dryRun: boolean;
  /** The cache as the user named it, shell-quoted, for hints. */
  cacheArgument: string;
}

export async function deletePaths(cache: BinaryCache, storePaths: readonly string[], options: DeletionOptions): Promise<DeletionOutcome> {
  const maintainable = requireMaintenance(cache);
  const inventory = await takeInventory(maintainable, options.log);
  const missing = storePaths.filter((storePath) => !inventory.paths.has(hashPartOf(storePath)));
  if (missing.length > 0) {
    throw new UserError(
      `${missing[0]} is not in ${cache.description}${missing.length > 1 ? ` (nor ${missing.length - 1} more)` : ''}; nothing was deleted`,
      `list what the cache holds with: cachix info ${options.cacheArgument}`,
    );
  }
  const referrers = referrersOf(inventory.paths);
  const doomed = new Set(storePaths.map(hashPartOf));
  const stack = [...doomed];
  while (stack.length > 0) {
    const hashPart = stack.pop()!;
    for (const referrer of referrers.get(hashPart) ?? []) {
      if (doomed.has(referrer)) continue;
      if (!options.recursive) {
        throw new UserError(
          `${inventory.paths.get(hashPart)!.info.storePath} is referred to by ${inventory.paths.get(referrer)!.info.storePath}, which stays; nothing was deleted`,
          'delete the referrers too with --recursive, or delete them first',
        );
      }
      doomed.add(referrer);
      stack.push(referrer);
    }
  }
  // A pin is a promise that its closure stays: breaking it takes deleting the pin first.
  const now = new Date();
  for (const pin of await readPins(maintainable, options.cacheArgument)) {
    const roots = liveRevisions(pin, now).map((revision) => hashPartOf(revision.storePath));
    const pinned = [...closureOf(roots, inventory.paths)].find((hashPart) => doomed.has(hashPart));
    if (pinned) {
      throw new UserError(
        `${inventory.paths.get(pinned)!.info.storePath} is kept by the pin '${pin.name}'; nothing was deleted`,
        `delete the pin first: cachix pin ${options.cacheArgument} ${pin.name} --delete`,
      );
    }
  }
  const waves = deletionWaves(doomed, referrers);
  if (options.dryRun) return { inventory, waves };
  const removal = await removePaths(maintainable, inventory, waves, [], options);
  return { inventory, waves, removal };
}
