// Which credentials go where. The token from `cachix authtoken` is a cachix.org (API host)
// credential: sent to any HTTP cache, it hands a third party's server the user's cachix token.
import type { CacheEntry, Config } from '../config.js';
import type { Context } from '../context.js';
import { registerSecret } from '../redact.js';

/** Whether `host` is the API host or one of its subdomains (NAME.cachix.org under cachix.org). */
export function isOnApiHost(url: URL, apiHost: string): boolean {
  let api: URL;
  try {
    api = new URL(apiHost);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  const apiName = api.hostname.toLowerCase();
  const sameOrBelow = host === apiName || host.endsWith(`.${apiName}`);
  // Never downgraded: a token for an https API host is not sent over plain http.
  return sameOrBelow && (url.protocol === 'https:' || url.protocol === api.protocol);
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface HttpCacheToken {
  token?: string | undefined;
  /** For a refusal: the stored global token was not sent here, and how to give it to this cache. */
  credentialsHint?: string | undefined;
}

/**
 * The bearer token for an HTTP cache: CACHIX_AUTH_TOKEN (set for this command, which names the
 * cache), else the cache's own `auth_token`, else the global token only when the cache is on the
 * cachix API host. Netrc and user:password in the URL are the cache's own business (http.ts).
 */
export function httpCacheToken(url: URL, context: Context, config: Config, apiHost: string, entry?: CacheEntry): HttpCacheToken {
  const token = context.env.CACHIX_AUTH_TOKEN || entry?.authToken || (isOnApiHost(url, apiHost) ? config.authToken : undefined);
  registerSecret(token);
  if (token) return { token };
  if (!config.authToken) return {};
  const name = entry ? (Object.entries(config.caches).find(([, candidate]) => candidate === entry)?.[0] ?? 'NAME') : 'NAME';
  return {
    credentialsHint:
      `the token stored by \`cachix authtoken\` is for the cachix API and is not sent to other servers; ` +
      `if this cache needs it, store it for the cache: cachix authtoken --cache ${name} --stdin (or set CACHIX_AUTH_TOKEN for one command)`,
  };
}

/** The token for a cachix API cache: CACHIX_AUTH_TOKEN, the cache's own, then the global one. */
export function cachixApiToken(context: Context, config: Config, entry?: CacheEntry): string | undefined {
  const token = context.env.CACHIX_AUTH_TOKEN || entry?.authToken || config.authToken;
  registerSecret(token);
  return token || undefined;
}
