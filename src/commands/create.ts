import { cacheForUrl, parseCacheUrl } from '../caches/open.js';
import { formatNixCacheInfo } from '../nix/cache-info.js';
import { checkCacheName, loadConfig, localCacheDir, saveConfig, type CacheEntry } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../nix/signing.js';
import { pathToFileURL } from 'node:url';

interface CreateOptions {
  url?: string;
  keyName?: string;
  priority: number;
  signingKey: boolean;
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
  const urlText = options.url ?? pathToFileURL(localCacheDir(name, context.env)).href;
  const url = parseCacheUrl(urlText);
  const key = options.signingKey ? generateSigningKey(options.keyName ?? `${name}-1`) : undefined;
  const cache = await cacheForUrl(url, context, config);

  if (cache.writeCacheInfo) {
    await cache.writeCacheInfo(formatNixCacheInfo({ storeDir: context.storeDir, wantMassQuery: true, priority: options.priority }));
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

  context.stderr.write(`created cache ${name} at ${urlText}\n`);
  if (entry.publicKey) {
    context.stderr.write(`its signing key is stored (0600) in ${context.configPath}; public key:\n`);
    context.stdout.write(`${entry.publicKey}\n`);
  }
  context.stderr.write(
    `next:\n  cachix push ${name} ./result     # push a build and its closure\n  cachix use ${name}               # make Nix substitute from it\n`,
  );
}
