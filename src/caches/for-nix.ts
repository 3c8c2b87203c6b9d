import { isCacheName, loadConfig, saveConfig, type CacheEntry } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { ATTIC_SCHEMES, atticToken, parseAtticUrl } from './attic.js';
import { authToken, openCache, type OpenedCache } from './open.js';
import { formatPublicKey, parseSigningKey, publicKeyOf } from '../nix/signing.js';
import { nixSubstituterUrl, type CacheForNix } from '../nixconf/cache-for-nix.js';
import { parsePublicKeyFrom } from './public-key.js';

/** During a key rotation Nix must trust the retired key too, until `sign --drop` retires it. */
function retiredPublicKeys(entry: CacheEntry | undefined): string[] {
  return (entry?.retiredSigningKeys ?? []).map((text) => formatPublicKey(publicKeyOf(parseSigningKey(text))));
}

function checkedKey(text: string, what: string): string {
  return formatPublicKey(parsePublicKeyFrom(text, what));
}

/** The token Nix needs in netrc for a private cache: an attic server's own, else the auth token. */
function cacheToken(opened: OpenedCache, context: Context): string | undefined {
  const url = new URL(opened.url);
  if (ATTIC_SCHEMES.includes(url.protocol)) return atticToken(parseAtticUrl(url), context, opened.config);
  return authToken(context, opened.config, url, opened.entry);
}

/**
 * Reads the cache's URL, keys and visibility from the config and the server. A pinned key (from
 * --public-key or an earlier pin) must be one the server or config also names, when they name
 * any: a different key means someone else's cache, or a rotated key to look at by hand.
 * `offline` (for remove) falls back to the config when the server cannot be reached.
 */
export async function cacheForNix(
  nameOrUrl: string,
  context: Context,
  options: { publicKey?: string | undefined; offline?: boolean } = {},
): Promise<CacheForNix> {
  const opened = await openCache(nameOrUrl, context);
  let serverKeys: string[] = [];
  let substituterUrl: string | undefined;
  let isPublic = true;
  try {
    const info = await opened.cache.info();
    serverKeys = info.publicKeys;
    substituterUrl = info.substituterUrl;
    isPublic = info.isPublic;
  } catch (error) {
    // Without its server, a cache whose substituter only the server can name has none to remove.
    if (!options.offline || opened.cache.capabilities.substituter === 'server') throw error;
  } finally {
    await opened.cache.close?.();
  }
  const entry = opened.entry;
  const known = [...serverKeys, ...(entry?.publicKey ? [entry.publicKey] : []), ...retiredPublicKeys(entry)].map((key) =>
    checkedKey(key, `the key '${key}' of ${opened.name}`),
  );
  const pinSource = options.publicKey ?? entry?.pinnedPublicKey;
  const pinned =
    pinSource === undefined ? undefined : checkedKey(pinSource, options.publicKey ? '--public-key' : `the pinned key of ${opened.name}`);
  const described = {
    name: opened.name,
    cacheUrl: opened.url,
    substituterUrl: nixSubstituterUrl(substituterUrl ?? opened.url),
    isPublic,
    token: cacheToken(opened, context),
    entry,
  };
  if (options.offline) {
    // Removing: every key this cache was ever trusted with goes, and none is required.
    return { ...described, publicKeys: [...new Set([...known, ...(pinned ? [pinned] : [])])] };
  }
  if (pinned && known.length > 0 && !known.includes(pinned)) {
    throw new UserError(
      `the pinned key ${pinned} is not the key of ${opened.name} (${known.join(', ')})`,
      'if the cache really changed its key, check with its owner, then pass the new key with --public-key',
    );
  }
  const publicKeys = pinned ? [pinned] : [...new Set(known)];
  if (publicKeys.length === 0) {
    throw new UserError(
      `no public key is known for ${opened.name}`,
      `pass the key that signs it: cachix use ${nameOrUrl} --public-key NAME-1:...`,
    );
  }
  return { ...described, publicKeys, newPin: options.publicKey && pinned !== entry?.pinnedPublicKey ? pinned : undefined };
}

/** Remembers a --public-key in the config entry, so later runs refuse a different key. */
export async function savePin(context: Context, cache: CacheForNix): Promise<void> {
  // A cache given by URL has no name to keep a pin under.
  if (!cache.newPin || !isCacheName(cache.name)) return;
  const config = await loadConfig(context.configPath);
  const entry = config.caches[cache.name] ?? cache.entry ?? { url: cache.cacheUrl };
  config.caches[cache.name] = { ...entry, pinnedPublicKey: cache.newPin };
  await saveConfig(context.configPath, config);
}
