// Which paths an upstream cache already serves, judged from the local store's own record: a path
// Nix substituted from cache.nixos.org keeps that cache's signature in its database entry, and a
// path built here has none. This is what attic decides by, and it costs no network request.
import type { CacheEntry } from '../config.js';
import type { PathInfo } from './path-info.js';

/** The key Nix ships as trusted and cache.nixos.org signs with. */
export const DEFAULT_UPSTREAM_KEYS = ['cache.nixos.org-1'];

/** The name of a signature's key: what comes before the first colon, as Nix splits it. */
export function signatureKeyName(signature: string): string {
  const colon = signature.indexOf(':');
  return colon < 0 ? '' : signature.slice(0, colon);
}

/** The upstream key that signed this path, or undefined for a path no upstream serves. */
export function upstreamKeyOf(info: PathInfo, upstreamKeys: readonly string[]): string | undefined {
  for (const signature of info.sigs) {
    const keyName = signatureKeyName(signature);
    if (upstreamKeys.includes(keyName)) return keyName;
  }
  return undefined;
}

/**
 * The upstream key names in force: none with --include-upstream; else the cache's
 * `upstream_keys` setting when it has one (an empty list there means "push everything"), else
 * cache.nixos.org-1; each --upstream-key adds to that.
 */
export function upstreamKeyNames(entry: CacheEntry | undefined, flags: { upstreamKey?: string[]; includeUpstream?: boolean }): string[] {
  if (flags.includeUpstream) return [];
  const base = entry?.upstreamKeys ?? DEFAULT_UPSTREAM_KEYS;
  return [...new Set([...base, ...(flags.upstreamKey ?? [])])];
}
