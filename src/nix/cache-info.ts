import { DEFAULT_STORE_DIR } from './store-path.js';

/** The `nix-cache-info` file at a binary cache's root, as Nix reads and writes it. */
export interface NixCacheInfo {
  storeDir: string;
  wantMassQuery: boolean;
  priority: number;
}

export function formatNixCacheInfo(info: NixCacheInfo): string {
  return `StoreDir: ${info.storeDir}\nWantMassQuery: ${info.wantMassQuery ? 1 : 0}\nPriority: ${info.priority}\n`;
}

/** Unknown fields are ignored and missing ones take Nix's defaults, as Nix does. */
export function parseNixCacheInfo(text: string): NixCacheInfo {
  const info: NixCacheInfo = { storeDir: DEFAULT_STORE_DIR, wantMassQuery: false, priority: 50 };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'StoreDir') info.storeDir = value;
    else if (key === 'WantMassQuery') info.wantMassQuery = value === '1';
    else if (key === 'Priority' && /^\d+$/.test(value)) info.priority = Number(value);
  }
  return info;
}

/** A plain binary cache's info for the push pipeline: no published keys, public unless told. */
export function binaryCacheInfo(text: string, substituterUrl: string, isPublic = true) {
  return { ...parseNixCacheInfo(text), publicKeys: [] as string[], substituterUrl, isPublic };
}

/**
 * Whether a server's answer for `nix-cache-info` is one. Nix skips lines it does not know, so a
 * web server answering every URL with a page would pass as a cache with Nix's defaults; a real
 * one (Nix, attic, cachix all write StoreDir) names at least one field, and is never markup.
 */
export function looksLikeNixCacheInfo(text: string): boolean {
  if (looksLikeMarkup(text)) return false;
  return /^(StoreDir|WantMassQuery|Priority):/m.test(text);
}

/** An HTML or XML page (a web server's index or error page), where a cache file was asked for. */
export function looksLikeMarkup(text: string): boolean {
  return text.trimStart().startsWith('<');
}
