import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { decodeBase32 } from '../nix/base32.js';
import { formatHashBase32 } from '../nix/hash.js';
import { MAX_NARINFO_BYTES, type NarInfo } from '../nix/narinfo.js';
import { parseNixCacheInfo } from '../nix/cache-info.js';
import type { BinaryCache, CacheInfo, NarUpload, CacheCapabilities } from './cache.js';
import { CachixApiClient } from './cachix-api-client.js';
import {
  PresignedUrlExpired,
  type BinaryCacheJson,
  type CompletedPart,
  type CompressionParam,
  type NarInfoCreate,
  type PinCreate,
} from './cachix-api-types.js';
import { withWholeRetry, type RetryOptions, type WholeRetryOptions } from './retry.js';
import { DEFAULT_STORE_DIR } from '../nix/store-path.js';
import { planParts, type PartPlan } from './part-plan.js';

/**
 * cachix's `-s/--chunk-size` and `-n/--num-concurrent-chunks` defaults and limits
 * (OptionsParser.hs): memory is about partSize × (partsInFlight + 1). S3 refuses a multipart
 * upload with a part under 5 MiB that is not the last.
 */
export const DEFAULT_PART_SIZE = 32 * 1024 * 1024;
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const PARTS_IN_FLIGHT = 4;
/** A presigned part URL that expired while the part waited is asked for again, this many times. */
const PRESIGN_ATTEMPTS = 3;
/** Store hashes per `POST /narinfo`: a request body of ~35 KB. */
export const MISSING_BATCH_SIZE = 1000;
/** Every cachix cache serves this nix-cache-info; used when the URI has none to read. */
const CACHIX_NIX_CACHE_INFO = { storeDir: DEFAULT_STORE_DIR, wantMassQuery: true, priority: 41 };

export interface CachixApiCacheOptions {
  name: string;
  /** The API host, e.g. https://cachix.org; routes live under `<host>/api/v1`. */
  host: string;
  token?: string | undefined;
  partSize?: number | undefined;
  partsInFlight?: number | undefined;
  /** At most this many parts to a NAR (S3's 10,000, behind the service); tests force fewer. */
  maxParts?: number | undefined;
  retry?: RetryOptions | undefined;
  /** A path whose upload failed is uploaded again from the start, as cachix does. */
  wholeRetry?: WholeRetryOptions | undefined;
}

/** Cachix's CompressionMethod has two values; the query parameter spells zstd "zst". */
function compressionParam(compression: string): CompressionParam {
  if (compression === 'zstd') return 'zst';
  if (compression === 'xz') return 'xz';
  throw new UserError(
    `the cachix API takes NARs compressed with zstd or xz, not ${compression}`,
    'push with --compression-method zstd (or xz)',
  );
}

function baseName(storePath: string): string {
  return storePath.slice(storePath.lastIndexOf('/') + 1);
}

/** Cuts a byte stream into parts of exactly `partSize` bytes (the last may be shorter). */
export async function* partsOf(stream: AsyncIterable<Buffer>, partSize: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSize - size, chunk.length - offset);
      pending.push(chunk.subarray(offset, offset + take));
      size += take;
      offset += take;
      if (size === partSize) {
        yield Buffer.concat(pending, size);
        pending = [];
        size = 0;
      }
    }
  }
  if (size > 0) yield Buffer.concat(pending, size);
}

/**
 * The signature to send: the server writes `Sig: <its key name>:<cSig>`, so it must be the one
 * made with a key the cache publishes, or Nix would find a signature under the wrong name.
 */
function chooseSignature(narInfo: NarInfo, cache: BinaryCacheJson): string | null {
  if (narInfo.sigs.length === 0) return null;
  const published = new Set(cache.publicSigningKeys.map((key) => key.slice(0, key.indexOf(':'))));
  const matching = narInfo.sigs.find((sig) => published.has(sig.slice(0, sig.indexOf(':'))));
  if (!matching && published.size > 0) {
    const names = narInfo.sigs.map((sig) => sig.slice(0, sig.indexOf(':'))).join(', ');
    throw new UserError(
      `${narInfo.storePath} is signed with ${names}, but cache ${cache.name} publishes only ${[...published].join(', ')}`,
      `sign with the cache's key (cachix generate-keypair ${cache.name}), or add your public key to the cache`,
    );
  }
  const sig = matching ?? narInfo.sigs[narInfo.sigs.length - 1]!;
  return sig.slice(sig.indexOf(':') + 1);
}

export function narInfoCreateOf(nar: NarUpload, narInfo: NarInfo, cache: BinaryCacheJson): NarInfoCreate {
  const base = baseName(narInfo.storePath);
  const fileDigest = narInfo.fileHash?.algorithm === 'sha256' ? narInfo.fileHash.digest : decodeBase32(nar.fileHashBase32, 32);
  return {
    cStoreHash: base.slice(0, 32),
    cStoreSuffix: base.slice(33),
    cNarHash: formatHashBase32(narInfo.narHash),
    cNarSize: narInfo.narSize,
    cFileHash: Buffer.from(fileDigest).toString('hex'),
    cFileSize: nar.fileSize,
    cReferences: narInfo.references.map(baseName).sort(),
    cDeriver: narInfo.deriver ? baseName(narInfo.deriver) : 'unknown-deriver',
    cSig: chooseSignature(narInfo, cache),
  };
}

class CachixApiCache implements BinaryCache {
  readonly description: string;
  readonly capabilities: CacheCapabilities = {
    signs: 'client-or-server',
    substituter: 'server',
    staging: { kind: 'temporary' },
    local: false,
    pins: 'service',
    serverKeepsGarbage:
      'cachix.org keeps pins and collects garbage on its servers: manage retention in the cache settings at app.cachix.org',
  };
  private readonly client: CachixApiClient;
  private readonly partSize: number;
  private readonly partsInFlight: number;
  private readonly maxParts: number | undefined;
  private readonly wholeRetry: WholeRetryOptions | undefined;
  private cache: Promise<BinaryCacheJson> | undefined;

  constructor(options: CachixApiCacheOptions) {
    this.client = new CachixApiClient(options);
    this.description = `cachix:${options.name} (${options.host.replace(/\/+$/, '')})`;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isInteger(this.partSize) || this.partSize < 1) throw new Error(`part size ${this.partSize} is not a positive whole number`);
    this.partsInFlight = options.partsInFlight ?? PARTS_IN_FLIGHT;
    this.wholeRetry = options.wholeRetry;
    this.maxParts = options.maxParts;
    if (!Number.isInteger(this.partsInFlight) || this.partsInFlight < 1)
      throw new Error(`${this.partsInFlight} parts in flight is not a positive whole number`);
  }

  private describe(): Promise<BinaryCacheJson> {
    this.cache ??= this.client.getCache();
    // A failed lookup is not remembered: the next call asks again.
    this.cache.catch(() => (this.cache = undefined));
    return this.cache;
  }

  async info(): Promise<CacheInfo> {
    const cache = await this.describe();
    const body = await this.client.getFromUri(cache.uri, 'nix-cache-info');
    const cacheInfo = body ? parseNixCacheInfo(await this.client.readText(body, MAX_NARINFO_BYTES)) : CACHIX_NIX_CACHE_INFO;
    const preferred = cache.preferredCompressionMethod;
    return {
      ...cacheInfo,
      publicKeys: cache.publicSigningKeys,
      substituterUrl: cache.uri,
      isPublic: cache.isPublic,
      preferredCompression: preferred === 'ZSTD' ? 'zstd' : preferred === 'XZ' ? 'xz' : undefined,
    };
  }

  async missing(hashParts: readonly string[]): Promise<Set<string>> {
    const unique = [...new Set(hashParts)];
    const missing = new Set<string>();
    for (let start = 0; start < unique.length; start += MISSING_BATCH_SIZE) {
      for (const hash of await this.client.missingHashes(unique.slice(start, start + MISSING_BATCH_SIZE))) missing.add(hash);
    }
    return missing;
  }

  async upload(nar: NarUpload, narInfo: NarInfo): Promise<void> {
    const compression = compressionParam(nar.compression);
    const cache = await this.describe();
    // Built before any byte moves, so a signature the server cannot use stops us early.
    const narInfoCreate = narInfoCreateOf(nar, narInfo, cache);
    // The chosen part size while the NAR fits in S3's 10,000 parts of it, else bigger parts, fewer at once.
    const plan = planParts(nar.fileSize, {
      preferredPartSize: this.partSize,
      preferredPartsInFlight: this.partsInFlight,
      maxParts: this.maxParts,
    });
    await withWholeRetry(narInfo.storePath, () => this.uploadOnce(nar, narInfoCreate, compression, plan), this.wholeRetry);
  }

  private async uploadOnce(nar: NarUpload, narInfoCreate: NarInfoCreate, compression: CompressionParam, plan: PartPlan): Promise<void> {
    const { narId, uploadId } = await this.client.createMultipartUpload(compression);
    try {
      const parts = await this.uploadParts(nar, narId, uploadId, plan);
      // complete stores the NAR and its narinfo in one call: Nix sees nothing before every part is in.
      await this.client.completeMultipartUpload(narId, uploadId, parts, narInfoCreate);
    } catch (error) {
      // Leave no orphaned parts to be billed for; the first error is the one worth reporting.
      await this.client.abortMultipartUpload(narId, uploadId).catch(() => undefined);
      throw error;
    }
  }

  /** Streams the NAR in parts, up to the plan's parts in flight at once; resolves with the parts in order. */
  private async uploadParts(nar: NarUpload, narId: string, uploadId: string, plan: PartPlan): Promise<CompletedPart[]> {
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    let partNumber = 0;
    const stream: Readable = nar.open();
    try {
      for await (const part of partsOf(stream as AsyncIterable<Buffer>, plan.partSize)) {
        if (failure) break;
        const number = ++partNumber;
        const sending: Promise<void> = this.uploadPart(narId, uploadId, number, part)
          .then((eTag) => void parts.push({ partNumber: number, eTag }))
          .catch((error: unknown) => void (failure ??= { error }))
          .finally(() => inFlight.delete(sending));
        inFlight.add(sending);
        if (inFlight.size >= plan.partsInFlight) await Promise.race(inFlight);
      }
    } finally {
      stream.destroy();
      await Promise.all(inFlight);
    }
    if (failure) throw failure.error;
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  private async uploadPart(narId: string, uploadId: string, partNumber: number, part: Buffer): Promise<string> {
    const contentMD5 = createHash('md5').update(part).digest('base64');
    for (let attempt = 1; ; attempt++) {
      // Asked for right before the PUT: a URL fetched early could expire while the part waits.
      const uploadUrl = await this.client.partUploadUrl(narId, uploadId, partNumber, contentMD5);
      try {
        return await this.client.putPart(uploadUrl, part, contentMD5);
      } catch (error) {
        // The service's URLs live for minutes; a part held up longer (retries, a slow link) gets a fresh one.
        if (!(error instanceof PresignedUrlExpired) || attempt >= PRESIGN_ATTEMPTS) throw error;
      }
    }
  }

  async getNarInfo(hashPart: string): Promise<string | undefined> {
    const cache = await this.describe();
    const body = await this.client.getFromUri(cache.uri, `${hashPart}.narinfo`);
    return body ? this.client.readText(body, MAX_NARINFO_BYTES) : undefined;
  }

  async getFile(relativeUrl: string): Promise<Readable | undefined> {
    const cache = await this.describe();
    return this.client.getFromUri(cache.uri, relativeUrl);
  }

  createPin(pin: PinCreate): Promise<void> {
    return this.client.createPin(pin);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** A cache behind the cachix.org API (or a server speaking it): NARs go up in presigned parts. */
export function createCachixApiCache(options: CachixApiCacheOptions): BinaryCache {
  return new CachixApiCache(options);
}
