import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { HttpStatusError } from './retry.js';
import { API_HOST_HINT, CachixApiCalls, type CachixApiClientOptions } from './cachix-api-calls.js';
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
 * the upload flow from cachix/src/Cachix/Client/Push/S3.hs; each call through cachix-api-calls.ts.
 */

export type { CachixApiClientOptions } from './cachix-api-calls.js';

/** One method per API route. */
export class CachixApiClient {
  readonly apiBase: string;
  private readonly calls: CachixApiCalls;

  constructor(private readonly options: CachixApiClientOptions) {
    this.apiBase = `${options.host.replace(/\/+$/, '')}/api/v1/cache/${encodeURIComponent(options.name)}`;
    this.calls = new CachixApiCalls(options);
  }

  private apiUrl(suffix: string, query: Record<string, string> = {}): URL {
    const url = new URL(this.apiBase + suffix);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    return url;
  }

  async getCache(): Promise<BinaryCacheJson> {
    const response = await this.calls.call({ method: 'GET', url: this.apiUrl(''), expect: [200], authorize: true, cacheLookup: true });
    const cache = await this.calls.json<BinaryCacheJson>(response, 'GET cache');
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
    const response = await this.calls.call({
      method: 'POST',
      url: this.apiUrl('/narinfo'),
      json: hashParts,
      expect: [200],
      authorize: true,
      cacheLookup: true,
    });
    const missing = await this.calls.json<unknown>(response, 'POST narinfo');
    if (!Array.isArray(missing) || missing.some((item) => typeof item !== 'string')) {
      throw new Error('the cachix API answered POST narinfo with something other than a list of hashes');
    }
    return missing as string[];
  }

  async createMultipartUpload(compression: CompressionParam): Promise<{ narId: string; uploadId: string }> {
    const response = await this.calls.call({
      method: 'POST',
      url: this.apiUrl('/multipart-nar', { compression }),
      expect: [200],
      authorize: true,
      cacheLookup: true,
    });
    const created = await this.calls.json<{ narId?: unknown; uploadId?: unknown }>(response, 'POST multipart-nar');
    if (typeof created.narId !== 'string' || typeof created.uploadId !== 'string') {
      throw new Error('the cachix API started an upload without narId or uploadId');
    }
    return { narId: created.narId, uploadId: created.uploadId };
  }

  /** A presigned URL for one part; the server signs Content-MD5 into it, so S3 checks the bytes. */
  async partUploadUrl(narId: string, uploadId: string, partNumber: number, contentMD5: string): Promise<string> {
    const url = this.apiUrl(`/multipart-nar/${encodeURIComponent(narId)}`, { uploadId, partNumber: String(partNumber) });
    const response = await this.calls.call({ method: 'POST', url, json: { contentMD5 }, expect: [200], authorize: true });
    const answer = await this.calls.json<{ uploadUrl?: unknown }>(response, 'POST multipart-nar part');
    if (typeof answer.uploadUrl !== 'string') throw new Error('the cachix API gave no uploadUrl for a part');
    return answer.uploadUrl;
  }

  /** PUTs one part to the object store, as Push/S3.hs does; the ETag names the part in `complete`. */
  async putPart(uploadUrl: string, part: Buffer, contentMD5: string): Promise<string> {
    const url = new URL(uploadUrl);
    const headers = { 'content-type': 'application/octet-stream', 'content-md5': contentMD5, 'content-length': String(part.length) };
    const response = await this.calls.call({ method: 'PUT', url, body: part, headers, expect: [200, 403], authorize: false });
    if (response.statusCode === 403) {
      const body = await this.calls.readText(response.body, 64 * 1024).catch(() => '');
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
    const response = await this.calls.call({ method: 'POST', url, json, expect: [200, 201, 204], authorize: true });
    await response.body.dump();
  }

  async abortMultipartUpload(narId: string, uploadId: string): Promise<void> {
    const url = this.apiUrl(`/multipart-nar/${encodeURIComponent(narId)}/abort`, { uploadId });
    const response = await this.calls.call({ method: 'POST', url, expect: [200, 201, 204], authorize: true });
    await response.body.dump();
  }

  /** `POST /key` (Cachix.Types.SigningKeyCreate): the service publishes this public key for the cache. */
  async createKey(publicKeyBase64: string): Promise<void> {
    const response = await this.calls.call({
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
    const response = await this.calls.call({
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
    const response = await this.calls.call({ method: 'GET', url, expect: [200, 404], authorize: this.sameSite(url) });
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

  readText(body: Readable, limit: number): Promise<string> {
    return this.calls.readText(body, limit);
  }

  close(): Promise<void> {
    return this.calls.close();
  }
}
