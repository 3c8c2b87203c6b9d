// `cachix config import`: what cachix.dhall holds, moved into our config.toml. Our config wins
// where both have a value (it is the one the user edits now); what was left out is said.
import type { CachixDhallConfig } from './cachix-dhall.js';
import type { Config } from './config.js';

export interface DhallImport {
  config: Config;
  /** What was taken, for the user (never the secrets themselves). */
  taken: string[];
  /** What was left out because config.toml already has its own value. */
  kept: string[];
}

const CACHIX_DEFAULT_HOSTNAME = 'https://cachix.org';

export function importCachixDhall(current: Config, dhall: CachixDhallConfig): DhallImport {
  const config: Config = { ...current, caches: { ...current.caches } };
  const taken: string[] = [];
  const kept: string[] = [];
  if (dhall.authToken) {
    if (!config.authToken) {
      config.authToken = dhall.authToken;
      taken.push('the auth token');
    } else if (config.authToken !== dhall.authToken) kept.push('the auth token (config.toml has another one)');
  }
  const hostname = dhall.hostname?.replace(/\/+$/, '');
  if (hostname && hostname !== CACHIX_DEFAULT_HOSTNAME) {
    if (!config.host) {
      config.host = hostname;
      taken.push(`host ${hostname}`);
    } else if (config.host !== hostname) kept.push(`host ${hostname} (config.toml has ${config.host})`);
  }
  // As cachix reads it, the last entry of a name wins.
  const secretKeys = new Map(dhall.binaryCaches.map((cache) => [cache.name, cache.secretKey.trim()]));
  for (const [name, secretKey] of secretKeys) {
    const entry = config.caches[name];
    if (!entry) {
      config.caches[name] = { url: `cachix:${name}`, signingKey: secretKey };
      taken.push(`the signing key of ${name}`);
    } else if (!entry.signingKey) {
      config.caches[name] = { ...entry, signingKey: secretKey };
      taken.push(`the signing key of ${name}`);
    } else if (entry.signingKey !== secretKey) kept.push(`the signing key of ${name} (config.toml has another one)`);
  }
  return { config, taken, kept };
}
