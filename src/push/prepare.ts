import type { BinaryCache } from '../caches/cache.js';
import { authToken, configuredNames, openCache, type OpenedCache } from '../caches/open.js';
import { urlExtraCompressions, type NarExtras } from './cache-extras.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { DEFAULT_STORE_DIR } from '../nix/store-path.js';
import type { SigningKey } from '../nix/signing.js';
import { checkCachixCompressionLevel, checkCompressionLevel, type CompressionMethod } from '../util/compression.js';
import type { PushOptions } from './push-options.js';
import { createProgress, type Progress } from './progress.js';
import { isCachixApiCache, resolveSigningKey } from './signing-key.js';
import { upstreamKeyNames } from '../store/upstream.js';
import { compileExcludes } from './exclude.js';

export interface PushFlags {
  compressionMethod?: CompressionMethod;
  compressionLevel?: number;
  jobs?: number;
  omitDeriver?: boolean;
  /** cachix's -s/--chunk-size and -n/--num-concurrent-chunks: multipart parts for cachix API caches. */
  chunkSize?: number;
  numConcurrentChunks?: number;
  /** --upstream-key NAME (repeatable): adds to the cache's upstream keys. */
  upstreamKey?: string[];
  /** --include-upstream: push paths signed by upstream keys too. */
  includeUpstream?: boolean;
  /** --exclude REGEX (repeatable) */
  exclude?: string[];
  logs?: boolean;
  listings?: boolean;
  debugInfo?: boolean;
  /** --quiet: failures and the closing summary only. */
  quiet?: boolean;
}

export interface PreparedPush {
  /** The name the user gave (or the URL), for messages. */
  cacheName: string;
  cache: BinaryCache;
  pushOptions: PushOptions;
  progress: Progress;
}

export async function preparePush(context: Context, cacheNameOrUrl: string, flags: PushFlags): Promise<PreparedPush> {
  const opened = await openCache(cacheNameOrUrl, context, { partSize: flags.chunkSize, partsInFlight: flags.numConcurrentChunks });
  // A server that signs itself (attic) needs no key of ours.
  const serverSigns = opened.cache.capabilities.signs === 'server';
  const hasToken = authToken(context, opened.config) !== undefined;
  // A bare name the config lacks, with nothing to push it with: most likely a typo, said before
  // asking cachix.org (generate-keypair NAME would register someone's cache by that name).
  if (opened.unknownName && !hasToken && !opened.cachixDhallKey && !context.env.CACHIX_SIGNING_KEY) {
    throw new UserError(
      `no cache named ${opened.name} in the config (${configuredNames(opened.config)}), and no auth token or CACHIX_SIGNING_KEY for a cachix.org cache of that name`,
      `check the name; for a cache on cachix.org, give cachix:${opened.name} with CACHIX_AUTH_TOKEN`,
    );
  }
  // A missing key for a cache we sign for is said before any network call; a cachix cache's
  // published keys name a bare key, so there it is resolved after asking the service.
  const early = serverSigns || isCachixApiCache(opened) ? undefined : resolveSigningKey(opened, context.env, undefined, hasToken);
  const info = await opened.cache.info();
  let signingKey: SigningKey | undefined = early;
  if (isCachixApiCache(opened)) {
    signingKey = resolveSigningKey(opened, context.env, info, hasToken);
    if (!signingKey && !flags.quiet) {
      context.log(
        `no signing key for ${opened.name}: pushing with the auth token only, and ${opened.cache.description} signs the paths with the key it keeps for the cache`,
      );
    }
  }
  if (info.storeDir !== DEFAULT_STORE_DIR && info.storeDir !== context.storeDir) {
    throw new UserError(
      `${opened.name} holds paths for the store ${info.storeDir}, not ${DEFAULT_STORE_DIR}`,
      'push to a cache made for this store',
    );
  }
  const compression = flags.compressionMethod ?? info.preferredCompression ?? 'zstd';
  if (compression === 'none' && flags.compressionLevel !== undefined) {
    context.log(`warning: -l ${flags.compressionLevel} is ignored: -m none does not compress`);
  }
  const jobs = flags.jobs ?? 8;
  if (jobs < 1) throw new UserError('--jobs must be at least 1');
  // cachix's own level range and default for cachix caches; Nix's elsewhere.
  const compressionLevel = isCachixApiCache(opened)
    ? checkCachixCompressionLevel(compression, flags.compressionLevel)
    : checkCompressionLevel(compression, flags.compressionLevel);
  const pushOptions: PushOptions = {
    compression,
    compressionLevel,
    jobs,
    omitDeriver: flags.omitDeriver === true,
    signingKey,
    // attic names its own upstream keys (upstream_cache_key_names); they join ours.
    selection: {
      upstreamKeys: flags.includeUpstream
        ? []
        : [...new Set([...upstreamKeyNames(opened.entry, flags), ...(info.upstreamCacheKeyNames ?? [])])],
      excludes: compileExcludes(flags.exclude),
    },
    extras: narExtras(opened, flags, context),
  };
  return {
    cacheName: opened.name,
    cache: opened.cache,
    pushOptions,
    progress: await createProgress(context.stderr, context.env, flags.quiet === true),
  };
}

/**
 * Logs, listings and the debug-info index, from the flags or the cache's settings; their
 * compression from the URL (log-compression=, ls-compression=), as Nix reads it. A server with
 * no route for them (the cachix API, attic) is said once, never dropped silently.
 */
function narExtras(opened: OpenedCache, flags: PushFlags, context: Context): NarExtras | undefined {
  const logs = flags.logs === true || opened.entry?.logs === true;
  const listings = flags.listings === true || opened.entry?.listings === true;
  const debugInfo = flags.debugInfo === true || opened.entry?.debugInfo === true;
  if (!logs && !listings && !debugInfo) return undefined;
  const asked = [logs && 'build logs', listings && 'NAR listings', debugInfo && 'the debug-info index'].filter(Boolean).join(', ');
  if (!opened.cache.putFile || opened.cache.capabilities.signs === 'server') {
    context.log(`note: ${opened.cache.description} has no route for ${asked}: they are not uploaded`);
    return undefined;
  }
  const url = new URL(opened.url);
  const http = url.protocol === 'http:' || url.protocol === 'https:';
  if (http && (url.searchParams.has('log-compression') || url.searchParams.has('ls-compression'))) {
    context.log(
      'note: log-compression and ls-compression are sent as Content-Encoding; Nix decodes them only if the server serves that header back (S3 does, nginx WebDAV does not)',
    );
  }
  return { logs, listings, debugInfo, ...urlExtraCompressions(url, opened.name) };
}
