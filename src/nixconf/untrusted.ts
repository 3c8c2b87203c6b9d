// An untrusted user's own substituters are honoured by the Nix daemon when the system config
// already allows them: each URL in `trusted-substituters` (or `substituters`), and its keys in
// `trusted-public-keys` (the daemon never takes keys from an untrusted client). That is how an
// admin lets users pick caches, and `cachix use` must then write the user's nix.conf.
import type { CacheForNix } from './cache-for-nix.js';
import { effectiveValues, loadNixConf } from './parse.js';
import { systemNixConfPath } from './trust.js';

type CacheIdentity = Pick<CacheForNix, 'substituterUrl' | 'publicKeys'>;

const withoutSlash = (url: string): string => url.replace(/\/+$/, '');

/** Why the daemon will honour this cache for an untrusted user, or undefined when it will not. */
export async function systemAllowsCache(cache: CacheIdentity, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const path = systemNixConfPath(env);
  const assignments = await loadNixConf(path);
  const allowedUrls = [...effectiveValues(assignments, 'trusted-substituters'), ...effectiveValues(assignments, 'substituters')].map(
    (entry) => withoutSlash(entry.value),
  );
  const keys = new Set(effectiveValues(assignments, 'trusted-public-keys').map((entry) => entry.value));
  if (!allowedUrls.includes(withoutSlash(cache.substituterUrl))) return undefined;
  if (cache.publicKeys.length === 0 || !cache.publicKeys.every((key) => keys.has(key))) return undefined;
  return `${path} already allows ${cache.substituterUrl} (trusted-substituters) and its key (trusted-public-keys)`;
}
