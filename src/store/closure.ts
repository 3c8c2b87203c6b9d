// The closure of the paths a user named: the first thing every push needs, and for a push that
// finds everything already in the cache nearly all it does. So it comes in two steps: the paths
// alone (`nix-store -qR`, cheap), then Nix's record of only those the cache turns out to lack.
import { UserError } from '../errors.js';
import { queryPathInfo, queryValidPaths, runNixBatched, type PathInfo } from './path-info.js';

/** A set of store paths, listed; Nix's record of any of them on request. */
export interface ClosureListing {
  paths: string[];
  infos(paths: string[], signal?: AbortSignal): Promise<PathInfo[]>;
}

/** A listing of paths whose records are already in hand. */
export function listingOf(infos: readonly PathInfo[]): ClosureListing {
  const byPath = new Map(infos.map((info) => [info.path, info]));
  return {
    paths: [...byPath.keys()],
    infos: async (paths) => paths.map((path) => byPath.get(path)).filter((info): info is PathInfo => info !== undefined),
  };
}

/**
 * The closure of `storePaths`. An invalid path fails with the validity check's message: that
 * check runs only then, since `nix-store -qR` refuses invalid paths without asking substituters.
 */
export async function queryClosure(
  storePaths: string[],
  signal?: AbortSignal,
  onFailure: (batch: string[]) => Promise<void> = requireValid,
): Promise<ClosureListing> {
  if (storePaths.length === 0) return listingOf([]);
  const paths = new Set<string>();
  await runNixBatched(
    'nix-store',
    ['--query', '--requisites'],
    storePaths,
    signal,
    (stdout) => {
      for (const line of stdout.split('\n')) if (line) paths.add(line);
    },
    onFailure,
  );
  const closure = [...paths];
  return {
    paths: closure,
    // Most of a closure: one recursive query from the roots costs less than thousands of arguments.
    infos: async (wanted, infoSignal) => {
      if (wanted.length === 0) return [];
      if (wanted.length * 2 < closure.length) return queryPathInfo(wanted, { signal: infoSignal });
      const want = new Set(wanted);
      return (await queryPathInfo(storePaths, { recursive: true, signal: infoSignal })).filter((info) => want.has(info.path));
    },
  };
}

/**
 * The closure of paths not known to be valid, or undefined when Nix refuses to list it (one of
 * them is invalid, or Nix cannot run): a listing proves every path valid, so a caller that must
 * sort valid from invalid asks which are valid only when this fails.
 */
export async function queryClosureIfValid(storePaths: string[]): Promise<ClosureListing | undefined> {
  try {
    return await queryClosure(storePaths, undefined, async () => undefined);
  } catch {
    return undefined;
  }
}

/** Records asked of Nix before anyone knows which are wanted; `drop` kills the query if none are. */
export interface SpeculativeInfos {
  infos(paths: string[]): Promise<PathInfo[]>;
  drop(): void;
}

/** Starts asking Nix for the records of the whole listing now, in case some are wanted later. */
export function speculateInfos(listing: ClosureListing): SpeculativeInfos {
  const stop = new AbortController();
  const all = listing.infos(listing.paths, stop.signal);
  all.catch(() => undefined);
  return {
    infos: async (paths) => {
      if (paths.length === 0) {
        stop.abort();
        return [];
      }
      const wanted = new Set(paths);
      return (await all).filter((info) => wanted.has(info.path));
    },
    drop: () => stop.abort(),
  };
}

/** A listing of exactly these paths, not their closures (--no-closure). */
export function listingOfPaths(storePaths: string[]): ClosureListing {
  return { paths: [...new Set(storePaths)], infos: (wanted, signal) => queryPathInfo(wanted, { signal }) };
}

/** Asked first, and cheaply: `nix path-info` on an invalid path would go and query substituters. */
export async function requireValid(storePaths: string[]): Promise<void> {
  const valid = new Set(await queryValidPaths(storePaths));
  const invalid = storePaths.filter((path) => !valid.has(path));
  if (invalid.length > 0) {
    const more = invalid.length > 1 ? ` (and ${invalid.length - 1} more)` : '';
    throw new UserError(
      `${invalid[0]}${more} is not a valid path in the Nix store`,
      'build or fetch it first (nix-build, nix-store --realise), then push',
    );
  }
}
