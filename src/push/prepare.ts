import type { BinaryCache } from '../caches/cache.js';
import { openCache, type OpenedCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { DEFAULT_STORE_DIR } from '../nix/store-path.js';
import { formatPublicKey, parsePublicKey, parseSigningKey, publicKeyOf, type SigningKey } from '../nix/signing.js';
import { checkCompressionLevel, type CompressionMethod } from '../util/compression.js';
import type { PushOptions } from './pipeline.js';
import { createProgress, type Progress } from './progress.js';
import { registerSecret } from '../redact.js';

export interface PushFlags {
  compressionMethod?: CompressionMethod;
  compressionLevel?: number;
  jobs?: number;
  omitDeriver?: boolean;
}

export interface PreparedPush {
  /** The name the user gave (or the URL), for messages. */
  cacheName: string;
  cache: BinaryCache;
  pushOptions: PushOptions;
  progress: Progress;
}

/** The cache's own key from the config, else CACHIX_SIGNING_KEY; checked against the cache's public key. */
export function findSigningKey(opened: OpenedCache, env: NodeJS.ProcessEnv): SigningKey {
  const text = opened.entry?.signingKey ?? env.CACHIX_SIGNING_KEY;
  const source = opened.entry?.signingKey ? `the config entry of ${opened.name}` : 'CACHIX_SIGNING_KEY';
  if (!text) {
    throw new UserError(
      `no signing key for ${opened.name}`,
      `set CACHIX_SIGNING_KEY to the cache's secret key, or run: cachix generate-keypair ${opened.name}`,
    );
  }
  registerSecret(text.trim());
  let key: SigningKey;
  try {
    key = parseSigningKey(text);
  } catch (error) {
    throw new UserError(
      `bad signing key in ${source}: ${(error as Error).message}`,
      'a signing key looks like NAME-1:<88 base64 characters>, as made by cachix generate-keypair or nix-store --generate-binary-cache-key',
    );
  }
  const expected = opened.entry?.publicKey;
  if (expected && formatPublicKey(publicKeyOf(key)) !== formatPublicKey(parsePublicKey(expected))) {
    throw new UserError(
      `the signing key from ${source} does not belong to ${opened.name} (its public key is ${expected})`,
      'Nix would reject everything signed with it; use the key that `cachix create` made for this cache',
    );
  }
  return key;
}

export async function preparePush(context: Context, cacheNameOrUrl: string, flags: PushFlags): Promise<PreparedPush> {
  const opened = await openCache(cacheNameOrUrl, context);
  // A server that signs itself (attic) needs no key of ours.
  const signingKey = opened.cache.uploadNarSource ? undefined : findSigningKey(opened, context.env);
  const info = await opened.cache.info();
  if (info.storeDir !== DEFAULT_STORE_DIR && info.storeDir !== context.storeDir) {
    throw new UserError(
      `${opened.name} holds paths for the store ${info.storeDir}, not ${DEFAULT_STORE_DIR}`,
      'push to a cache made for this store',
    );
  }
  const compression = flags.compressionMethod ?? info.preferredCompression ?? 'zstd';
  const jobs = flags.jobs ?? 8;
  if (jobs < 1) throw new UserError('--jobs must be at least 1');
  const pushOptions: PushOptions = {
    compression,
    compressionLevel: checkCompressionLevel(compression, flags.compressionLevel),
    jobs,
    omitDeriver: flags.omitDeriver === true,
    signingKey,
    upstreamKeyNames: info.upstreamCacheKeyNames,
  };
  return { cacheName: opened.name, cache: opened.cache, pushOptions, progress: await createProgress(context.stderr, context.env) };
}
