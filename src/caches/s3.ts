import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { UserError } from '../errors.js';
import { formatNarInfo, MAX_NARINFO_BYTES, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import {
  FILE_SERVER_CAPABILITIES,
  LOOKUP_CONCURRENCY,
  type BinaryCache,
  type CacheInfo,
  type ListedAbsence,
  type ListedFile,
  type NarUpload,
} from './cache.js';
import { binaryCacheInfo } from '../nix/cache-info.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { FirstAnswer } from './http-errors.js';
import { readLimited } from '../util/read-limited.js';
import { serverWaitMs, withRetry, type RetryOptions } from './retry.js';
import { lookupByListing } from './listed-lookup.js';
import { explainS3Failure, refusedCredentials, statusOf, tidySdkTimeout } from './s3-errors.js';
import { AdaptivePace } from './pacing.js';
import { planParts } from './part-plan.js';
import { putSpooledObject } from './s3-multipart.js';
import { createS3Client } from './s3-client.js';
import { parseS3Url, type S3Location } from './s3-location.js';
import { listFolder, listRootPage, type S3ListTarget } from './s3-listing.js';

/** Parts are held in memory while sent: at most PART_SIZE x PART_QUEUE bytes per NAR in flight (planParts keeps that for bigger parts). */
export const PART_SIZE = 16 * 1024 * 1024;
export const PART_QUEUE = 4;
/** From this many lookups on, a listing of the bucket is tried before one HEAD per path. */
export const LISTING_MIN_LOOKUPS = 64;
/** Requests to one S3 server at once before it throttles us (the SDK's own socket limit is 50). */
const MAX_IN_FLIGHT = 48;

export interface S3CacheOptions {
  retry?: RetryOptions | undefined;
  /** Connecting may take connectMs; a connection may sit idle (nothing sent or received) idleMs. Tests shorten these. */
  timeouts?: { connectMs?: number; idleMs?: number } | undefined;
  /** At most this many parts to a NAR (S3's 10,000); tests force fewer to make parts bigger. */
  maxParts?: number | undefined;
  /** Without throttling for this long, our pace steps up again (tests shorten it). */
  quietMs?: number | undefined;
}

class S3Cache implements BinaryCache {
  readonly description: string;
  readonly capabilities = FILE_SERVER_CAPABILITIES;
  private readonly location: S3Location;
  private clientPromise: Promise<S3Client> | undefined;
  private readonly firstAnswer: FirstAnswer;
  /** Until a listing fails: then lookups go by HEAD alone. */
  private listingWorks = true;
  private readonly pace: AdaptivePace;
  /** Set by close(): a request the closing cut short is not retried (nor logged as retried). */
  private closed = false;

  constructor(
    private readonly url: URL,
    private readonly options: S3CacheOptions,
  ) {
    this.location = parseS3Url(url);
    const { bucket, prefix, endpoint } = this.location;
    this.description = `s3://${bucket}/${prefix}`.replace(/\/$/, '') + (endpoint ? ` at ${endpoint}` : '');
    this.firstAnswer = new FirstAnswer(
      this.description,
      'check the endpoint in the cache URL, that the server is running, and the network',
    );
    const log = options.retry?.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
    this.pace = new AdaptivePace({ maxInFlight: MAX_IN_FLIGHT, server: this.description, log, quietMs: options.quietMs });
  }

  /** The SDK is large; it is loaded only when an S3 cache is really used. */
  private client(): Promise<S3Client> {
    this.clientPromise ??= createS3Client(this.location, this.options.timeouts);
    return this.clientPromise;
  }

  private key(relative: string): string {
    return this.location.prefix + relative;
  }

  /** One request, paced and retried; errors as the server gave them. */
  private attempts<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const attempt = async (): Promise<T> => {
      try {
        const result = await this.pace.run(operation);
        this.firstAnswer.heard();
        return result;
      } catch (error) {
        if (this.closed) throw new UserError(`${what} ${this.description} was cut short: the command was ending`);
        const waitMs = serverWaitMs(error);
        if (waitMs !== undefined) this.pace.holdFor(waitMs);
        throw tidySdkTimeout(this.firstAnswer.failure(error));
      }
    };
    return withRetry(`${what} ${this.description}`, attempt, this.options.retry);
  }

  /** Retries what is worth retrying, then says in one line what the user can fix. */
  private async call<T>(what: string, writing: boolean, operation: () => Promise<T>): Promise<T> {
    try {
      return await this.attempts(what, operation);
    } catch (error) {
      throw explainS3Failure(error, { what, writing, description: this.description, location: this.location });
    }
  }

  /**
   * An object's bytes, or undefined when absent (404, or 403 AccessDenied as Nix reads it:
   * unlistable keys look forbidden). Refused credentials are an error, never "absent".
   */
  private async getObject(relative: string): Promise<Readable | undefined> {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const client = await this.client();
    return this.call(`GET ${relative} from`, false, async () => {
      try {
        const output = await client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(relative) }));
        return output.Body as Readable;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404 || (status === 403 && !refusedCredentials(error, this.description))) return undefined;
        throw error;
      }
    });
  }

  private async readText(relative: string): Promise<string | undefined> {
    const body = await this.getObject(relative);
    if (!body) return undefined;
    return readLimited(
      body,
      MAX_NARINFO_BYTES,
      () => new Error(`${relative} in ${this.description} is larger than ${MAX_NARINFO_BYTES} bytes`),
    );
  }

  async info(): Promise<CacheInfo> {
    const text = await this.readText('nix-cache-info');
    if (text === undefined) {
      throw new UserError(
        `${this.description} has no nix-cache-info, so Nix will not use it as a binary cache`,
        'check the bucket, or write one with `cachix create`',
      );
    }
    // Whether the bucket is world-readable is a bucket policy we cannot see; assume private.
    return binaryCacheInfo(text, this.url.href, false);
  }

  private async listTarget(): Promise<S3ListTarget> {
    return {
      client: await this.client(),
      bucket: this.location.bucket,
      prefix: this.location.prefix,
      attempts: (what, request) => this.attempts(what, request),
      call: (what, request) => this.call(what, false, request),
    };
  }

  async listedAbsent(hashParts: readonly string[], suffix: string): Promise<ListedAbsence> {
    const unique = [...new Set(hashParts)];
    if (unique.length < LISTING_MIN_LOOKUPS || !this.listingWorks) return { absent: new Set(), undecided: unique };
    const target = await this.listTarget();
    // A key that may not list the bucket, or a server that cannot, still has its requests file by
    // file: a refused listing is not asked again by this process.
    const listed = await lookupByListing(unique, (startAfter, maxKeys) => listRootPage(target, startAfter, maxKeys), suffix).catch(
      (error: unknown) => {
        // Wrong credentials would fail every HEAD too: say so rather than call everything missing.
        const refused = refusedCredentials(error, this.description);
        if (refused) throw refused;
        this.listingWorks = false;
        return undefined;
      },
    );
    return listed ? { absent: listed.missing, undecided: listed.undecided } : { absent: new Set(), undecided: unique };
  }

  async missing(hashParts: readonly string[]): Promise<Set<string>> {
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    const client = await this.client();
    const { absent: missing, undecided } = await this.listedAbsent(hashParts, '.narinfo');
    await forEachConcurrently(undecided, LOOKUP_CONCURRENCY, async (hashPart) => {
      const present = await this.call(`HEAD ${hashPart}.narinfo in`, false, async () => {
        try {
          await client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(`${hashPart}.narinfo`) }));
          return true;
        } catch (error) {
          const status = statusOf(error);
          if (status === 404 || status === 403) return false;
          throw error;
        }
      });
      if (!present) missing.add(hashPart);
    });
    return missing;
  }

  async upload(nar: NarUpload, narInfo: NarInfo): Promise<void> {
    const client = await this.client();
    const plan = planParts(nar.fileSize, {
      preferredPartSize: PART_SIZE,
      preferredPartsInFlight: PART_QUEUE,
      maxParts: this.options.maxParts,
    });
    const target = {
      client,
      bucket: this.location.bucket,
      key: this.key(nar.narUrl),
      contentType: 'application/x-nix-nar',
      call: <T>(what: string, request: () => Promise<T>) => this.call(what, true, request),
    };
    await putSpooledObject(target, { path: nar.localPath, size: nar.fileSize }, plan);
    // Only now, with every byte of the NAR stored, may Nix learn that the path exists.
    await this.putText(`${hashPartOf(narInfo.storePath)}.narinfo`, formatNarInfo(narInfo), 'text/x-nix-narinfo');
  }

  private async putText(relative: string, body: string | Uint8Array, contentType: string, contentEncoding?: string): Promise<void> {
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const client = await this.client();
    await this.call(`PUT ${relative} to`, true, () =>
      client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.key(relative),
          Body: body,
          ContentType: contentType,
          ...(contentEncoding && { ContentEncoding: contentEncoding }),
        }),
      ),
    );
  }

  getNarInfo(hashPart: string): Promise<string | undefined> {
    return this.readText(`${hashPart}.narinfo`);
  }

  getFile(relativeUrl: string): Promise<Readable | undefined> {
    return this.getObject(relativeUrl);
  }

  writeCacheInfo(text: string): Promise<void> {
    return this.putText('nix-cache-info', text, 'text/x-nix-cache-info');
  }

  /** ListObjectsV2, a page of up to 1000 keys at a time, only the keys directly in `folder`. */
  async list(folder: string): Promise<ListedFile[]> {
    return listFolder(await this.listTarget(), folder);
  }

  /**
   * S3 answers 204 whether or not the key was there, so whether this call removed it is asked
   * first (HEAD) and the delete made conditional on that version (If-Match, which S3 honours and
   * some S3-compatible servers ignore): two gcs at once do not both count one deletion.
   */
  async deleteFile(relativeUrl: string): Promise<boolean> {
    const { DeleteObjectCommand, HeadObjectCommand } = await import('@aws-sdk/client-s3');
    const client = await this.client();
    const target = { Bucket: this.location.bucket, Key: this.key(relativeUrl) };
    const eTag = await this.call(`HEAD ${relativeUrl} in`, false, async () => {
      try {
        return (await client.send(new HeadObjectCommand(target))).ETag ?? '';
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
    if (eTag === undefined) return false;
    return this.call(`DELETE ${relativeUrl} from`, true, async () => {
      try {
        await client.send(new DeleteObjectCommand({ ...target, ...(eTag ? { IfMatch: eTag } : {}) }));
        return true;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404 || status === 412) return false;
        throw error;
      }
    });
  }

  /** One PutObject: S3 makes an object visible only once it is complete. */
  putFile(relativeUrl: string, body: string | Uint8Array, contentType: string, contentEncoding?: string): Promise<void> {
    return this.putText(relativeUrl, body, contentType, contentEncoding);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.clientPromise) (await this.clientPromise).destroy();
  }
}

/** An S3 or S3-compatible bucket, addressed as Nix's S3 store addresses it. */
export function createS3Cache(url: URL, options: S3CacheOptions = {}): BinaryCache {
  return new S3Cache(url, options);
}
