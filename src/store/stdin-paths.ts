// Paths a program hands over on stdin, such as cachix-action's scan of every new entry of the
// store directory: that list holds leftovers that are no valid path (a build's temporary folder,
// a path being deleted), and one such entry must not keep the real outputs from being pushed.
// Arguments a person typed stay strict (resolveStorePaths, requireValid): a typo there is an error.
import { UserError } from '../errors.js';
import { isStorePath } from '../nix/store-path.js';
import { queryClosureIfValid } from './closure.js';
import { offerClosure } from './early-closure.js';
import { queryValidPaths } from './path-info.js';
import { resolveStorePaths } from './resolve-paths.js';

export interface SkippedEntry {
  entry: string;
  reason: string;
}

export interface SortedStdinPaths {
  /** Valid store paths, in the order given, each once. */
  valid: string[];
  /** Entries that are not valid store paths, with why. */
  skipped: SkippedEntry[];
}

/**
 * Splits stdin's entries into valid store paths and the rest. Nix is asked for their closure
 * first: the push needs it next (it is handed over, see offerClosure), and Nix lists it only when
 * every path is valid, which is what stdin almost always holds (`nix-store -qR … | cachix push`).
 * Only when it refuses is Nix asked which paths are valid.
 */
export async function sortStdinPaths(entries: string[], storeDir: string): Promise<SortedStdinPaths> {
  const skipped: SkippedEntry[] = [];
  const resolved: string[] = [];
  for (const entry of entries) {
    const trimmed = entry.replace(/\/+$/, '');
    // A store path as Nix lists it needs no resolving: thousands of them, no await each.
    if (trimmed.startsWith(`${storeDir}/`) && isStorePath(trimmed, storeDir)) {
      resolved.push(trimmed);
      continue;
    }
    try {
      resolved.push(...(await resolveStorePaths([entry], storeDir)));
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      skipped.push({ entry, reason: error.message.replace(`'${entry}' `, '') });
    }
  }
  const unique = [...new Set(resolved)];
  if (unique.length === 0) return { valid: [], skipped };
  const closure = await queryClosureIfValid(unique);
  if (closure) {
    offerClosure(unique, closure);
    return { valid: unique, skipped };
  }
  const valid = new Set(await queryValidPaths(unique));
  for (const path of unique) if (!valid.has(path)) skipped.push({ entry: path, reason: 'is not a valid path in the Nix store' });
  return { valid: unique.filter((path) => valid.has(path)), skipped };
}
