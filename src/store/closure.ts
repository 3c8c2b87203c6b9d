// The closure of the paths a user named, with what Nix records of each: the first thing every
// push needs, and for a push that finds everything already in the cache nearly all it does.
import { UserError } from '../errors.js';
import { queryPathInfo, queryValidPaths, type PathInfo } from './path-info.js';

/**
 * Checks the paths are valid and asks for their closure at the same time: the check exists
 * because `nix path-info` of an invalid path would go and ask the substituters, so the closure
 * query is stopped as soon as the check finds one, and waits for nothing otherwise.
 */
export async function queryClosure(storePaths: string[], signal?: AbortSignal): Promise<PathInfo[]> {
  if (storePaths.length === 0) return [];
  const stop = new AbortController();
  const closure = queryPathInfo(storePaths, { recursive: true, signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal });
  // Its failure is reported through the validity check below when the paths are invalid.
  closure.catch(() => undefined);
  try {
    await requireValid(storePaths);
  } catch (error) {
    stop.abort();
    throw error;
  }
  return closure;
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
