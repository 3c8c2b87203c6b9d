import { join } from 'node:path';
import { cachixDhallSecretKey, loadCachixDhallFallback, type CachixDhallConfig } from '../cachix-dhall.js';
import { configPermissionWarning, isCacheName, loadConfig, type CacheEntry, type Config } from '../config.js';
import { DEFAULT_CACHIX_HOST, type Context } from '../context.js';
import { UserError } from '../errors.js';
import type { BinaryCache } from './cache.js';
import { printable } from '../util/printable.js';
import { checkFileUrlText, directoryAsCacheUrl, looksLikeDirectory } from './cache-location.js';
import { cachixApiToken, httpCacheToken } from './credentials.js';
import { FileCache } from './file.js';
import { redactUrlPassword } from '../redact.js';

export interface OpenedCache {
  /** The configured name, or the URL when the user gave one (its password replaced: for messages). */
  name: string;
  url: string;
  entry?: CacheEntry | undefined;
  /** Our config, with cachix.dhall's token and host filled in where ours has none. */
  config: Config;
  cache: BinaryCache;
  /** The cache's secret key from cachix.dhall, when our config has none (cachix's bare base64). */
  cachixDhallKey?: { text: string; path: string } | undefined;
  /**
   * Why cachix.dhall, read for what our config lacks, could not be used (its file and line).
   * Thrown by whoever turns out to need it (push looking for a key); the rest go on without it.
   */
  cachixDhallProblem?: UserError | undefined;
  /** A bare name the config does not know, taken to be a cachix API cache: it may be a typo. */
  unknownName?: boolean;
}

/** Backend settings a command can set (push's -s/-n for cachix API caches). */
export interface BackendOptions {
  partSize?: number | undefined;
  partsInFlight?: number | undefined;
}

/** "configured: a, b" (or that none are), for messages about a name the config lacks. */
export function configuredNames(config: Config): string {
  const names = Object.keys(config.caches);
  return names.length > 0 ? `configured: ${names.join(', ')}` : 'no caches are configured';
}

const URL_SCHEMES = ['file:', 'http:', 'https:', 's3:', 'cachix:', 'attic+http:', 'attic+https:'];

export function looksLikeUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:\\/i.test(text);
}

/** Whether a cache URL (as the config holds it) names a cache on the cachix API, whose keys the service keeps; known without opening it. */
export function isCachixApiUrl(url: string): boolean {
  return url.startsWith('cachix:');
}

export function parseCacheUrl(text: string): URL {
  checkFileUrlText(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(
      `'${text}' is not a valid cache URL`,
      'use file:///dir, http(s)://host/path, s3://bucket?region=..., cachix:NAME, or attic+https://host/CACHE',
    );
  }
  if (!URL_SCHEMES.includes(url.protocol)) {
    throw new UserError(
      `'${url.protocol}' caches are not supported`,
      'use file:///dir, http(s)://host/path, s3://bucket?region=..., cachix:NAME, or attic+https://host/CACHE',
    );
  }
  return url;
}

/**
 * The token a cache gets (see credentials.ts): for an HTTP cache never the global cachix token
 * unless the cache is on the cachix API host.
 */
export function authToken(context: Context, config: Config, url?: URL, entry?: CacheEntry): string | undefined {
  if (url && (url.protocol === 'http:' || url.protocol === 'https:')) {
    return httpCacheToken(url, context, config, cachixHost(context, config), entry).token;
  }
  return cachixApiToken(context, config, cachixHost(context, config), entry);
}

export function cachixHost(context: Context, config: Config): string {
  return (context.host ?? config.host ?? DEFAULT_CACHIX_HOST).replace(/\/+$/, '');
}

/** Builds the backend for a URL. Heavy SDKs are imported only for the scheme that needs them. */
export async function cacheForUrl(
  url: URL,
  context: Context,
  config: Config,
  backend: BackendOptions = {},
  entry?: CacheEntry,
): Promise<BinaryCache> {
  switch (url.protocol) {
    case 'file:':
      return FileCache.fromUrl(url);
    case 'http:':
    case 'https:': {
      const { createHttpCache } = await import('./http.js');
      const netrcFile = join(context.nixConfDir, 'netrc');
      const { token, credentialsHint } = httpCacheToken(url, context, config, cachixHost(context, config), entry);
      return createHttpCache(url, { token, credentialsHint, netrcFile, retry: { log: context.log }, warn: context.log });
    }
    case 's3:': {
      const { createS3Cache } = await import('./s3.js');
      return createS3Cache(url, { retry: { log: context.log } });
    }
    case 'cachix:': {
      const { createCachixApiCache } = await import('./cachix-api.js');
      return createCachixApiCache({
        name: url.pathname,
        host: cachixHost(context, config),
        token: cachixApiToken(context, config, cachixHost(context, config), entry),
        retry: { log: context.log },
        wholeRetry: { log: context.log },
        partSize: backend.partSize,
        partsInFlight: backend.partsInFlight,
      });
    }
    case 'attic+http:':
    case 'attic+https:': {
      const { createAtticCache } = await import('./attic.js');
      return createAtticCache(url, context, config, { log: context.log });
    }
    default:
      throw new UserError(`'${url.protocol}' caches are not supported`);
  }
}

/**
 * A configured name, a URL, or (as with cachix itself) the name of a cache on the cachix API
 * host: a name the config does not know is looked up there.
 */
export async function openCache(nameOrUrl: string, context: Context, backend: BackendOptions = {}): Promise<OpenedCache> {
  const ours = await loadConfig(context.configPath);
  // Signing keys and tokens others can read are as good as leaked: say so every time the config is used.
  const warning = await configPermissionWarning(context.configPath);
  if (warning) context.log(warning);
  const entry = ours.caches[nameOrUrl];
  const { config: dhall, problem: cachixDhallProblem } = await cachixDhallIfNeeded(context, ours, entry);
  const config = withCachixDhall(ours, dhall);
  const dhallKey = cachixDhallSecretKey(dhall, nameOrUrl);
  const cachixDhallKey = dhall && dhallKey ? { text: dhallKey, path: dhall.path } : undefined;
  // A cachix API cache may need anything cachix.dhall holds (token, host, key): no going on without it.
  const needsDhall = (url: string): void => {
    if (cachixDhallProblem && isCachixApiUrl(url)) throw cachixDhallProblem;
  };
  if (entry) {
    needsDhall(entry.url);
    const url = parseCacheUrl(entry.url);
    return {
      name: nameOrUrl,
      url: entry.url,
      entry,
      config,
      cachixDhallKey,
      cachixDhallProblem,
      cache: await cacheForUrl(url, context, config, backend, entry),
    };
  }
  if (looksLikeUrl(nameOrUrl) || looksLikeDirectory(nameOrUrl)) {
    let text = nameOrUrl;
    if (looksLikeDirectory(nameOrUrl)) {
      const directory = directoryAsCacheUrl(nameOrUrl);
      if (directory.note) context.log(directory.note);
      text = directory.url;
    }
    needsDhall(text);
    const url = parseCacheUrl(text);
    // The name is what messages show: never the URL's password.
    return {
      name: redactUrlPassword(text),
      url: text,
      config,
      cachixDhallProblem,
      cache: await cacheForUrl(url, context, config, backend),
    };
  }
  if (!isCacheName(nameOrUrl)) {
    throw new UserError(
      `'${printable(nameOrUrl)}' is neither a cache name nor a cache URL`,
      'run `cachix create NAME` first, or give a URL such as file:///srv/cache, or a directory as ./dir or /abs/dir',
    );
  }
  const url = `cachix:${nameOrUrl}`;
  needsDhall(url);
  // As cachix does, but said: a mistyped name must not silently become someone's cachix.org cache.
  context.log(
    `note: ${nameOrUrl} is not in ${context.configPath} (${configuredNames(config)}); looking it up on ${cachixHost(context, config)} (write ${url} to say so)`,
  );
  return {
    name: nameOrUrl,
    url,
    config,
    cachixDhallKey,
    cache: await cacheForUrl(new URL(url), context, config, backend),
    unknownName: true,
  };
}

/**
 * cachix's config is read only when ours (and the environment) lacks the token or the cache's
 * key, so a broken cachix.dhall cannot get in the way of a user who has moved over.
 */
async function cachixDhallIfNeeded(
  context: Context,
  config: Config,
  entry: CacheEntry | undefined,
): Promise<{ config?: CachixDhallConfig | undefined; problem?: UserError }> {
  const lacksToken = !context.env.CACHIX_AUTH_TOKEN && !config.authToken;
  const lacksKey = !context.env.CACHIX_SIGNING_KEY && !entry?.signingKey;
  return lacksToken || lacksKey ? loadCachixDhallFallback(context.cachixDhallPath) : {};
}

function withCachixDhall(config: Config, dhall: CachixDhallConfig | undefined): Config {
  if (!dhall) return config;
  return { ...config, authToken: config.authToken || dhall.authToken, host: config.host ?? dhall.hostname };
}
