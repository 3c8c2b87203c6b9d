// `delete`: remove named paths; a path another remaining path refers to is refused unless
// recursive, which takes its referrers too. Nothing is deleted when any request is refused.
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import { requireMaintenance } from './capabilities.js';
import { deletionWaves } from './deletion-order.js';
import { referenceGraph } from './gc-plan.js';
import { takeInventory, type CacheInventory } from './inventory.js';
import { closureOf } from './path-graph.js';
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
  const inventory = await takeInventory(maintainable, { log: options.log, forRemoval: !options.dryRun });
  const { paths } = inventory;
  const missing = storePaths.filter((storePath) => !paths.has(hashPartOf(storePath)));
  if (missing.length > 0) {
    throw new UserError(
      `${missing[0]} is not in ${cache.description}${missing.length > 1 ? ` (nor ${missing.length - 1} more)` : ''}; nothing was deleted`,
      `list what the cache holds with: cachix info ${options.cacheArgument}`,
    );
  }
  const graph = referenceGraph(paths);
  const isDoomed = new Uint8Array(paths.count);
  const doomed: number[] = [];
  for (const storePath of storePaths) {
    const row = paths.indexOf(hashPartOf(storePath));
    if (isDoomed[row] === 1) continue;
    isDoomed[row] = 1;
    doomed.push(row);
  }
  const stack = [...doomed];
  while (stack.length > 0) {
    const row = stack.pop()!;
    const referrers = graph.referrers(row);
    for (let i = 0; i < referrers.length; i++) {
      const referrer = referrers[i]!;
      if (isDoomed[referrer] === 1) continue;
      if (!options.recursive) {
        throw new UserError(
          `${paths.storePath(row)} is referred to by ${paths.storePath(referrer)}, which stays; nothing was deleted`,
          'delete the referrers too with --recursive, or delete them first',
        );
      }
      isDoomed[referrer] = 1;
      doomed.push(referrer);
      stack.push(referrer);
    }
  }
  // A pin is a promise that its closure stays: breaking it takes deleting the pin first.
  const now = new Date();
  for (const pin of await readPins(maintainable, options.cacheArgument)) {
    const roots = liveRevisions(pin, now).map((revision) => hashPartOf(revision.storePath));
    const pinned = closureOf(paths, roots).find((row) => isDoomed[row] === 1);
    if (pinned !== undefined) {
      throw new UserError(
        `${paths.storePath(pinned)} is kept by the pin '${pin.name}'; nothing was deleted`,
        `delete the pin first: cachix pin ${options.cacheArgument} ${pin.name} --delete`,
      );
    }
  }
  const waves = deletionWaves(doomed, graph).map((wave) => wave.map((row) => paths.hashPart(row)));
  if (options.dryRun) return { inventory, waves };
  const removal = await removePaths(maintainable, inventory, waves, [], options);
  return { inventory, waves, removal };
}
