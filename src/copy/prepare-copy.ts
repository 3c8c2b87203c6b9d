// Opens both caches of a copy and settles, before any path moves, what signs, what is trusted and
// how NARs are compressed: the source's public keys (configured, or published by the service),
// the destination's key (when it has one), and whether the destination needs another compression.
import type { BinaryCache } from '../caches/cache.js';
import { authToken, openCache, type OpenedCache } from '../caches/open.js';
import { parsePublicKeyFrom } from '../caches/public-key.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { formatPublicKey, parseSigningKey, publicKeyOf, type PublicKey, type SigningKey } from '../nix/signing.js';
import { DEFAULT_STORE_DIR } from '../nix/store-path.js';
import { findSigningKeyText, isCachixApiCache, resolveSigningKey } from '../push/signing-key.js';
import { createProgress, type Progress } from '../push/progress.js';
import { checkCachixCompressionLevel, checkCompressionLevel } from '../util/compression.js';
import type { Recompression } from '../push/nar/from-cache.js';
import type { PushFlags } from '../push/prepare.js';
import { urlExtraCompressions, type NarExtras } from '../push/cache-extras.js';

/** push's options a copy shares (compression, jobs, deriver, cachix API parts), and its own. */
export interface CopyFlags extends Pick<
  PushFlags,
  'compressionMethod' | 'compressionLevel' | 'jobs' | 'omitDeriver' | 'chunkSize' | 'numConcurrentChunks'
> {
  /** --no-check-sigs gives false. */
  checkSigs?: boolean;
  /** --no-sign gives false. */
  sign?: boolean;
  /** Repeatable --public-key: the source's keys, instead of what is configured or published. */
  publicKey?: string[];
  /** `import`: the destination must be a cachix API cache. */
  onlyCachixApi?: boolean;
}

export interface PreparedCopy {
  sourceName: string;
  destinationName: string;
  source: BinaryCache;
  destination: BinaryCache;
  /** Undefined with --no-check-sigs. */
  sourceKeys: PublicKey[] | undefined;
  signingKey: SigningKey | undefined;
  /** A signature of the source travels along (the cachix API carries only its own one). */
  keepSourceSigs: boolean;
  /** Set when the destination takes another compression than the source's (-m, or a method it cannot take). */
  recompression: (compression: string) => Recompression | undefined;
  /** How the destination's URL asks logs and listings to be stored (`log-compression=`, `ls-compression=`). */
  extraCompressions: Pick<NarExtras, 'logCompression' | 'lsCompression'>;
  jobs: number;
  omitDeriver: boolean;
  progress: Progress;
  close(): Promise<void>;
}

/** The keys that sign the source: --public-key, the config entry (current and retired), or what the service publishes. */
async function sourcePublicKeys(opened: OpenedCache, given: string[] | undefined): Promise<PublicKey[]> {
  if (given && given.length > 0) return given.map((text) => parsePublicKeyFrom(text, '--public-key'));
  const entry = opened.entry;
  const texts: string[] = [];
  if (entry?.pinnedPublicKey) texts.push(entry.pinnedPublicKey);
  else if (entry?.publicKey) texts.push(entry.publicKey);
  else if (entry?.signingKey) texts.push(formatPublicKey(publicKeyOf(parseSigningKey(entry.signingKey))));
  for (const retired of entry?.retiredSigningKeys ?? []) texts.push(formatPublicKey(publicKeyOf(parseSigningKey(retired))));
  if (texts.length === 0) texts.push(...(await opened.cache.info()).publicKeys);
  if (texts.length === 0) {
    throw new UserError(
      `no public key is known for ${opened.name}, so its signatures cannot be checked`,
      `give the key that signs it: cachix copy --public-key NAME-1:... ${opened.name} DST, or copy unchecked with --no-check-sigs`,
    );
  }
  return texts.map((text) => parsePublicKeyFrom(text, `the key of ${opened.name}`));
}

function destinationKey(opened: OpenedCache, context: Context, info: Awaited<ReturnType<BinaryCache['info']>>): SigningKey | undefined {
  if (opened.cache.capabilities.signs === 'server') return undefined;
  const hasToken = authToken(context, opened.config) !== undefined;
  // A cache we sign for but hold no key of: its narinfos keep the source's signatures only.
  if (!findSigningKeyText(opened, context.env) && !opened.cachixDhallProblem && !isCachixApiCache(opened)) return undefined;
  return resolveSigningKey(opened, context.env, info, hasToken);
}

export async function prepareCopy(context: Context, sourceName: string, destinationName: string, flags: CopyFlags): Promise<PreparedCopy> {
  const source = await openCache(sourceName, context);
  const destination = await openCache(destinationName, context, { partSize: flags.chunkSize, partsInFlight: flags.numConcurrentChunks });
  const close = async (): Promise<void> => {
    await Promise.all([source.cache.close?.(), destination.cache.close?.()]);
  };
  try {
    const cachixApi = isCachixApiCache(destination);
    if (flags.onlyCachixApi && !cachixApi) {
      throw new UserError(
        `${destination.name} is not a cachix API cache: import copies into one`,
        `copy into any other cache with: cachix copy ${sourceName} ${destinationName}`,
      );
    }
    const sourceKeys = flags.checkSigs === false ? undefined : await sourcePublicKeys(source, flags.publicKey);
    const info = await destination.cache.info();
    if (info.storeDir !== DEFAULT_STORE_DIR && info.storeDir !== context.storeDir) {
      throw new UserError(
        `${destination.name} holds paths for the store ${info.storeDir}, not ${DEFAULT_STORE_DIR}`,
        'copy into a cache made for this store',
      );
    }
    const signingKey = flags.sign === false ? undefined : destinationKey(destination, context, info);
    if (!signingKey && destination.cache.capabilities.signs === 'client') {
      context.log(`note: no signing key for ${destination.name}: its narinfos keep the signatures of ${source.name} only`);
    }
    if (flags.compressionMethod === 'none' && flags.compressionLevel !== undefined) {
      context.log(`warning: -l ${flags.compressionLevel} is ignored: -m none does not compress`);
    }
    const jobs = flags.jobs ?? 8;
    if (jobs < 1) throw new UserError('--jobs must be at least 1');
    // The cachix API takes zstd and xz only; any other method is compressed again for it.
    const fallback = info.preferredCompression ?? 'zstd';
    const recompression = (compression: string): Recompression | undefined => {
      const wanted = flags.compressionMethod ?? (cachixApi && compression !== 'zstd' && compression !== 'xz' ? fallback : undefined);
      if (wanted === undefined || wanted === compression) return undefined;
      const level = cachixApi
        ? checkCachixCompressionLevel(wanted, flags.compressionLevel)
        : checkCompressionLevel(wanted, flags.compressionLevel);
      return { method: wanted, level };
    };
    if (flags.compressionMethod) recompression('');
    const extraCompressions = urlExtraCompressions(new URL(destination.url), destination.name);
    return {
      sourceName: source.name,
      destinationName: destination.name,
      source: source.cache,
      destination: destination.cache,
      sourceKeys,
      signingKey,
      keepSourceSigs: !cachixApi,
      recompression,
      extraCompressions,
      jobs,
      omitDeriver: flags.omitDeriver === true,
      progress: await createProgress(context.stderr, context.env, false, { doing: 'copying', done: 'copied' }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
