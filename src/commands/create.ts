import { directoryAsCacheUrl } from '../caches/cache-location.js';
import { cacheForUrl, looksLikeUrl, parseCacheUrl } from '../caches/open.js';
import { formatNixCacheInfo } from '../nix/cache-info.js';
import { checkCacheName, loadConfig, saveConfig, type CacheEntry } from '../config.js';
import { localCacheDir } from '../config-paths.js';
import type { Context } from '../context.js';
import { messageOf, UserError } from '../errors.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, parseSigningKey, publicKeyOf, type SigningKey } from '../nix/signing.js';
import { alreadyACacheError, existingCacheInfo } from '../caches/existing-cache.js';
import { registerSecret } from '../redact.js';
import { pathToFileURL } from 'node:url';

interface CreateOptions {
  url?: string;
  keyName?: string;
  priority: number;
  signingKey: boolean;
  force?: boolean;
}

function parseGivenKey(text: string): SigningKey {
  registerSecret(text);
  try {
    return parseSigningKey(text);
  } catch (error) {
    throw new UserError(`bad signing key in CACHIX_SIGNING_KEY: ${messageOf(error)}`, 'give the secret key the cache is signed with');
  }
}

export async function run(context: Context, name: string, options: CreateOptions): Promise<void> {
  checkCacheName(name);
  const config = await loadConfig(context.configPath);
  if (config.caches[name]) {
    throw new UserError(
      `a cache named ${name} already exists (${config.caches[name]!.url})`,
      `pick another name, or remove [caches.${name}] from ${context.configPath}`,
    );
  }
  let urlText = options.url ?? pathToFileURL(localCacheDir(name, context.env)).href;
  if (!looksLikeUrl(urlText)) {
    const directory = directoryAsCacheUrl(urlText);
    if (directory.note) context.log(directory.note);
    urlText = directory.url;
  }
  const url = parseCacheUrl(urlText);
  const cache = await cacheForUrl(url, context, config);
  const existing = cache.writeCacheInfo && !options.force ? await existingCacheInfo(cache) : undefined;
  // An existing cache keeps its key: the one in CACHIX_SIGNING_KEY is registered, never a new one.
  const givenKey = existing && options.signingKey ? context.env.CACHIX_SIGNING_KEY?.trim() : undefined;
  if (existing && options.signingKey && !givenKey) throw alreadyACacheError(name, urlText, existing);
  // A server that signs what it stores (attic) keeps its own key: none is made here.
  const key = givenKey
    ? parseGivenKey(givenKey)
    : options.signingKey && cache.capabilities.signs !== 'server'
      ? generateSigningKey(options.keyName ?? `${name}-1`)
      : undefined;
  const storeDir = context.storeDir;
  let done = `created cache ${name} at ${urlText}`;

  if (existing) {
    context.log(`${urlText} already holds a binary cache: registering it as it is (nix-cache-info left unchanged)`);
    done = `registered cache ${name} at ${urlText}`;
  } else if (cache.writeCacheInfo) {
    await cache.writeCacheInfo(formatNixCacheInfo({ storeDir, wantMassQuery: true, priority: options.priority }));
  } else if (cache.createOnServer) {
    const outcome = await cache.createOnServer({ storeDir, priority: options.priority, isPublic: false });
    done =
      outcome === 'existed'
        ? `registered the existing cache at ${urlText} as ${name} (its server keeps the cache and signs what is pushed)`
        : `created the cache ${urlText} on its server (private, signed by the server's key) and registered it as ${name}`;
  } else {
    await cache.info(); // a cachix API cache is made on its server; check it exists and we may use it
  }

  const entry: CacheEntry = { url: urlText };
  if (key) {
    entry.signingKey = formatSigningKey(key);
    entry.publicKey = formatPublicKey(publicKeyOf(key));
  }
  config.caches[name] = entry;
  await saveConfig(context.configPath, config);

  await cache.close?.();
  context.stderr.write(`${done}\n`);
  if (entry.publicKey) {
    context.stderr.write(`its signing key is stored (0600) in ${context.configPath}; public key:\n`);
    context.stdout.write(`${entry.publicKey}\n`);
  }
  context.stderr.write(
    `next:\n  cachix push ${name} ./result     # push a build and its closure\n  cachix use ${name}               # make Nix substitute from it\n`,
  );
}
