import type { CacheEntry } from '../config.js';

/** What Nix must be told to use a cache: the URL it substitutes from and the keys it trusts. */
export interface CacheForNix {
  name: string;
  /** The URL our config knows the cache by (file://, https://, s3://, cachix:NAME). */
  cacheUrl: string;
  substituterUrl: string;
  publicKeys: string[];
  isPublic: boolean;
  /** The token for a private cache's netrc entry, when one is known. */
  token?: string | undefined;
  entry?: CacheEntry | undefined;
  /** A key given with --public-key that the config does not pin yet. */
  newPin?: string | undefined;
}

// The query parameters Nix's S3 store reads; anything else in our URL is ours and stays out.
const NIX_S3_PARAMETERS = ['region', 'endpoint', 'scheme', 'profile'];

/** The cache URL written the way Nix reads it: no credentials in it, only Nix's S3 parameters. */
export function nixSubstituterUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  if (parsed.protocol === 's3:') {
    for (const key of [...parsed.searchParams.keys()]) if (!NIX_S3_PARAMETERS.includes(key)) parsed.searchParams.delete(key);
  }
  return parsed.href;
}
