import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { UserError } from '../errors.js';
import { registerSecret } from '../redact.js';
import { errorDetailOf, FirstAnswer } from './http-errors.js';
import { readLimited } from '../util/read-limited.js';
import { HttpStatusError, parseRetryAfter, parseRetryAfterBody, withRetry, type RetryOptions } from './retry.js';
import { requestWatchingUpload, UPLOAD_LIMITS } from './upload-watchdog.js';
import {
  PresignedUrlExpired,
  type BinaryCacheJson,
  type CompletedPart,
  type CompressionParam,
  type NarInfoCreate,
  type PinCreate,
} from './cachix-api-types.js';

/*
 * The cachix.org HTTP API, as the cachix client (github.com/cachix/cachix) speaks it:
 * routes from cachix-api/src/Cachix/API.hs under `/api/v1`, JSON shapes in cachix-api-types.ts,
 * the upload flow from cachix/src/Cachix/Client/Push/S3.hs.
 */

export interface CachixApiClientOptions {
  name: string;
  host: string;
  token?: string | undefined;
  retry?: RetryOptions | undefined;
}

const TOKEN_HINT = 'run `cachix authtoken <token>` or set CACHIX_AUTH_TOKEN';
const API_HOST_HINT = 'check that --host (or CACHIX_HOST, or host in the config) points at a cachix API server';
/** An error body is shown to the user, so only its first line and only this much of it. */
const MAX_DETAIL = 200;

function readText(body: Readable, limit: number): Promise<string> {
  return readLimited(body, limit, () => new Error(`a response from the cachix API was larger than ${limit} bytes`));
}

interface CallOptions {
  method: Dispatcher.HttpMethod;
  url: URL;
  /** Statuses handed back to the caller; any other becomes an HttpStatusError. */
  expect: number[];
  json?: unknown;
  body?: Buffer;
  headers?: Record<string, string>;
  /** Send the bearer token: only to the API and the cache's own URI, never to a presigned URL. */
  authorize: boolean;
  /** A 404 here means the cache itself does not exist. */
  cacheLookup?: boolean;
}

/** Bodies above this (NAR parts) are timed by progress; API calls keep undici's timeouts. */
const UPLOAD_WATCH_BYTES = 1024 * 1024;

/** One HTTP call per API route; each retried on 5xx, 429 and dropped connections. */
export class CachixApiClient {
  readonly apiBase: string;
  private readonly agent: Agent;
  private readonly firstAnswer: FirstAnswer;

  constructor(private readonly options: CachixApiClientOptions) {
    this.apiBase = `${options.host.replace(/\/+$/, '')}/api/v1/cache/${encodeURIComponent(options.name)}`;
    registerSecret(options.token);
    this.firstAnswer = new FirstAnswer(
      `the cachix API at ${options.host}`,
      'check the network and --host; a cache of your own must be named as in your config (see cachix create)',
    );
    this.agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
  }

  private apiUrl(suffix: string, query: Record<string, string> = {}): URL {
    const url = new URL(this.apiBase + suffix);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    return url;
  }

  /** The request as the user may see it: no query string (presigned URLs carry signatures). */
  private static shown(method: string, url: URL): string {
    return `${method} ${url.origin}${url.pathname}`;
  }

  async call(options: CallOptions): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': 'cachix-any', ...options.headers };
    if (options.authorize && this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let body: string | Buffer | undefined = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    const shown = CachixApiClient.shown(options.method, options.url);
    return this.retrying(shown, options, headers, body);
  }

  private async retrying(
    shown: string,
    options: CallOptions,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await this.attempts(shown, options, headers, body);
    } catch (error) {
      throw this.firstAnswer.unreachable(error) ?? error;
    }
  }

  private attempts(
    shown: string,
    options: CallOptions,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
  ): Promise<Dispatcher.ResponseData> {
    return withRetry(
      shown,
      async () => {
        let response: Dispatcher.ResponseData;
        try {
          // A NAR part is timed by progress, not by undici's clock (see upload-watchdog).
          const limits = Buffer.isBuffer(body) && body.length > UPLOAD_WATCH_BYTES ? UPLOAD_LIMITS : undefined;
          response = await requestWatchingUpload(options.url, { method: options.method, headers, body, dispatcher: this.agent }, limits);
          this.firstAnswer.heard();
        } catch (error) {
          throw this.firstAnswer.failure(error);
        }
        if (options.expect.includes(response.statusCode)) return response;
        const text = await readText(response.body, 64 * 1024).catch(() => '');
        const detail = errorDetailOf(text, MAX_DETAIL);
        this.refuse(response.statusCode, options);
        throw new HttpStatusError(options.method, `${options.url.origin}${options.url.pathname}`, response.statusCode, {
          retryAfterMs: parseRetryAfter(response.headers['retry-after']) ?? parseRetryAfterBody(response.headers['content-type'], text),
          detail,
        });
      },
      this.options.retry,
    );
  }

  /** Statuses no retry can fix, as one line the user can act on. */
  private refuse(status: number, options: CallOptions): void {
    const { name, host } = this.options;
    if (options.authorize && (status === 401 || status === 403)) {
      const why = this.options.token ? 'refused the token' : 'needs a token';
      throw new UserError(`cachix API ${why} for cache ${name} (HTTP ${status})`, TOKEN_HINT);
    }
    if (options.cacheLookup && status === 404) {
      throw new UserError(`no cache ${name} on ${host}`, `check the name, or create the cache at ${host}`);
    }
  }

  private async json<T>(response: Dispatcher.ResponseData, what: string): Promise<T> {
    const text = await readText(response.body, 64 * 1024 * 1024);
    try {
      return JSON.parse(text) as T;
    } catch {
      // A login portal, a proxy's error page or a wrong --host: the user can fix it, and the page itself is noise.
      const shown = /<html|<!DOCTYPE/i.test(text) ? 'an HTML page' : `'${text.slice(0, 60).replace(/\s+/g, ' ')}'`;
      throw new UserError(
        `the cachix API at ${this.options.host} answered ${what} with something that is not JSON: ${shown}`,
        API_HOST_HINT,
      );
    }
  }

  async getCache(): Promise<BinaryCacheJson> {
    const response = await this.call({ method: 'GET', url: this.apiUrl(''), expect: [200], authorize: true, cacheLookup: true });
    const cache = await this.json<BinaryCacheJson>(response, 'GET cache');
    if (typeof cache.uri !== 'string' || !Array.isArray(cache.publicSigningKeys)) {
      throw new UserError(
        `the cachix API at ${this.options.host} described cache ${this.options.name} without uri or publicSigningKeys`,
        API_HOST_HINT,
      );
    }
    return cache;
  }

  /** `POST /narinfo`: of these store hashes, the ones the cache lacks. */
  async missingHashes(hashParts: readonly string[]): Promise<string[]> {
    const response = await this.call({
      method: 'POST',
      url: this.apiUrl('/narinfo'),
      json: hashParts,
      expect: [200],
      authorize: true,
      cacheLookup: true,
    });
    const missing = await this.json<unknown>(response, 'POST narinfo');
    if (!Array.isArray(missing) || missing.some((item) => typeof item !== 'string')) {
      throw new Error('the cachix API answered POST narinfo with something other than a list of hashes');
    }
    return missing as string[];
  }

  async createMultipartUpload(compression: CompressionParam): Promise<{ narId: string; uploadId: string }> {
    const response = await this.call({
      method: 'POST',
      url: this.apiUrl('/multipart-nar', { compression }),
      expect: [200],
      authorize: true,
      cacheLookup: true,
    });
    const created = await this.json<{ narId?: unknown; uploadId?: unknown }>(response, 'POST multipart-nar');
    if (typeof created.narId !== 'string' || typeof created.uploadId !== 'string') {
      throw new Error('the cachix API started an upload without narId or uploadId');
    }
    return { narId: created.narId, uploadId: created.uploadId };
  }

  /** A presigned URL for one part; the server signs Content-MD5 into it, so S3 checks the bytes. */
  async partUploadUrl(narId: string, uploadId: string, partNumber: number, contentMD5: string): Promise<string> {
    const url = this.apiUrl(`/multipart-nar/${encodeURIComponent(narId)}`, { uploadId, partNumber: String(partNumber) });
    const response = await this.call({ method: 'POST', url, json: { contentMD5 }, expect: [200], authorize: true });
    const answer = await this.json<{ uploadUrl?: unknown }>(response, 'POST multipart-nar part');
    if (typeof answer.uploadUrl !== 'string') throw new Error('the cachix API gave no uploadUrl for a part');
    return answer.uploadUrl;
  }

  /** PUTs one part to the object store, as Push/S3.hs does; the ETag names the part in `complete`. */
  async putPart(uploadUrl: string, part: Buffer, contentMD5: string): Promise<string> {
    const url = new URL(uploadUrl);
    const headers = { 'content-type': 'application/octet-stream', 'content-md5': contentMD5, 'content-length': String(part.length) };
    const response = await this.call({ method: 'PUT', url, body: part, headers, expect: [200, 403], authorize: false });
    if (response.statusCode === 403) {
      const body = await readText(response.body, 64 * 1024).catch(() => '');
      if (/expired/i.test(body)) throw new PresignedUrlExpired(url);
      const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
      throw new HttpStatusError('PUT', `${url.origin}${url.pathname}`, 403, { detail: code });
    }
    await response.body.dump();
    const eTag = response.headers.etag;
    if (typeof eTag !== 'string' || eTag === '') throw new Error(`the object store took a part at ${url.origin} but sent no ETag`);
    return eTag;
  }

  async completeMultipartUpload(narId: string, uploadId: string, parts: CompletedPart[], narInfoCreate: NarInfoCreate): Promise<void> {
    const url = this.apiUrl(`/multipart-nar/${encodeURIComponent(narId)}/complete`, { uploadId });
    // parts is `Maybe (NonEmpty CompletedPart)` in the Haskell type: null, never [], when empty.
    const json = { parts: parts.length > 0 ? parts : null, narInfoCreate };
    const response = await this.call({ method: 'POST', url, json, expect: [200, 201, 204], authorize: true });
    await response.body.dump();
  }

  async abortMultipartUpload(narId: string, uploadId: string): Promise<void> {
    const url = this.apiUrl(`/multipart-nar/${encodeURIComponent(narId)}/abort`, { uploadId });
    const response = await this.call({ method: 'POST', url, expect: [200, 201, 204], authorize: true });
    await response.body.dump();
  }

  /** `POST /key` (Cachix.Types.SigningKeyCreate): the service publishes this public key for the cache. */
  async createKey(publicKeyBase64: string): Promise<void> {
    const response = await this.call({
      method: 'POST',
      url: this.apiUrl('/key'),
      json: { publicKey: publicKeyBase64 },
      expect: [200, 201, 204],
      authorize: true,
      cacheLookup: true,
    });
    await response.body.dump();
  }

  /** `POST /pin` (Cachix.Types.PinCreate). */
  async createPin(pin: PinCreate): Promise<void> {
    const response = await this.call({
      method: 'POST',
      url: this.apiUrl('/pin'),
      json: pin,
      expect: [200, 201, 204],
      authorize: true,
      cacheLookup: true,
    });
    await response.body.dump();
  }

  /** GET a file under the cache's substituter URI; undefined when the cache has none. */
  async getFromUri(uri: string, relativeUrl: string): Promise<Readable | undefined> {
    const base = uri.endsWith('/') ? uri : `${uri}/`;
    const url = new URL(relativeUrl, base);
    const response = await this.call({ method: 'GET', url, expect: [200, 404], authorize: this.sameSite(url) });
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    return response.body;
  }

  /**
   * The token goes to the cache URI only when it is the API host or below it (NAME.cachix.org
   * under cachix.org): a cache description must not be able to send our token elsewhere.
   */
  private sameSite(url: URL): boolean {
    const api = new URL(this.options.host);
    if (url.protocol !== api.protocol) return false;
    return url.host === api.host || (url.port === api.port && url.hostname.endsWith(`.${api.hostname}`));
  }

  async readText(body: Readable, limit: number): Promise<string> {
    return readText(body, limit);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** A network failure reaching the API host, as one line; undefined for anything else. */
