// Which credentials go where. The token from `cachix authtoken` is a cachix.org (API host)
// credential: sent to any HTTP cache, it hands a third party's server the user's cachix token.
import type { CacheEntry, Config } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
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
  const name = entry ? Object.entries(config.caches).find(([, candidate]) => candidate === entry)?.[0] : undefined;
  const globalNotSent =
    config.authToken && !token && !isOnApiHost(url, apiHost)
      ? '; the token from `cachix authtoken TOKEN` is for the cachix API only and is not sent to this server'
      : '';
  return {
    token: token ? refuseOverPlainHttp(token, url, context) : undefined,
    credentialsHint: httpCredentialsHint(name) + globalNotSent,
  };
}

/**
 * What to do when an HTTP cache refuses us: the ways a token reaches it (its own stored token,
 * CACHIX_AUTH_TOKEN) and Nix's netrc. One hint, the same wherever the refusal comes from.
 */
export function httpCredentialsHint(cacheName?: string): string {
  const store = cacheName
    ? `store this cache's token: cachix authtoken --cache ${cacheName} --stdin, or set CACHIX_AUTH_TOKEN for one command`
    : 'set CACHIX_AUTH_TOKEN for this command, or register the cache (cachix create NAME --url URL) and store its token: cachix authtoken --cache NAME --stdin';
  return `${store}; or check the netrc file Nix reads (netrc-file, default /etc/nix/netrc)`;
}

/** The token for a cachix API cache: CACHIX_AUTH_TOKEN, the cache's own, then the global one. */
export function cachixApiToken(context: Context, config: Config, apiHost: string, entry?: CacheEntry): string | undefined {
  const token = context.env.CACHIX_AUTH_TOKEN || entry?.authToken || config.authToken;
  registerSecret(token);
  return token ? refuseOverPlainHttp(token, hostUrl(apiHost), context) : undefined;
}

/** The environment variable that lets a token go over plain http to a host that is not loopback. */
export const ALLOW_HTTP_TOKEN_VARIABLE = 'CACHIX_ALLOW_HTTP_CREDENTIALS';

/**
 * A token over plain http to another machine can be read (and replayed) by anyone on the way:
 * refused, whatever the token (global, per-cache, per-server, from the environment), unless the
 * user says the network is theirs. Loopback never leaves the machine.
 */
export function refuseOverPlainHttp(token: string, url: URL | undefined, context: Pick<Context, 'env'>): string {
  if (!url) return token;
  const plain = url.protocol === 'http:' || url.protocol === 'attic+http:';
  if (!plain || isLoopbackHost(url.hostname) || context.env[ALLOW_HTTP_TOKEN_VARIABLE] === '1') return token;
  throw new UserError(
    `refusing to send a token to ${url.host} over plain http, where anyone on the way can read it`,
    `use the server's https URL, or, on a network you trust, set ${ALLOW_HTTP_TOKEN_VARIABLE}=1`,
  );
}

function hostUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
