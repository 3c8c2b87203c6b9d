// Paths a program hands over on stdin, such as cachix-action's scan of every new entry of the
// store directory: that list holds leftovers that are no valid path (a build's temporary folder,
// a path being deleted), and one such entry must not keep the real outputs from being pushed.
// Arguments a person typed stay strict (resolveStorePaths, requireValid): a typo there is an error.
import { UserError } from '../errors.js';
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

/** Splits stdin's entries into valid store paths and the rest, asking Nix once for validity. */
export async function sortStdinPaths(entries: string[], storeDir: string): Promise<SortedStdinPaths> {
  const skipped: SkippedEntry[] = [];
  const resolved: string[] = [];
  for (const entry of entries) {
    try {
      resolved.push(...(await resolveStorePaths([entry], storeDir)));
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      skipped.push({ entry, reason: error.message.replace(`'${entry}' `, '') });
    }
  }
  const unique = [...new Set(resolved)];
  const valid = new Set(unique.length > 0 ? await queryValidPaths(unique) : []);
  for (const path of unique) if (!valid.has(path)) skipped.push({ entry: path, reason: 'is not a valid path in the Nix store' });
  return { valid: unique.filter((path) => valid.has(path)), skipped };
}
