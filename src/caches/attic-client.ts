// The attic server's HTTP API, as attic's own client speaks it.
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent } from './undici-lean.js';
import { UserError } from '../errors.js';
import { registerSecret } from '../redact.js';
import { readLimited } from '../util/read-limited.js';
import { errorDetailOf, FirstAnswer } from './http-errors.js';
import { HttpStatusError, parseRetryAfter, withRetry, type RetryOptions } from './retry.js';
import { requestWatchingUpload, UPLOAD_LIMITS } from './upload-watchdog.js';
import {
  NAR_INFO_PREAMBLE_THRESHOLD,
  type AtticCacheConfig,
  type CreateCacheRequest,
  type UploadPathNarInfo,
  type UploadPathResult,
} from './attic-api.js';

/*
 * Routes from attic's server/src/api/v1/mod.rs, JSON shapes from attic/src/api/v1/*.rs (serde
 * field names as written there), the upload as client/src/api/mod.rs sends it: the NAR
 * uncompressed in the PUT body, its metadata in X-Attic-Nar-Info, or at the start of the body
 * with X-Attic-Nar-Info-Preamble-Size when the JSON is 4 KiB or more. Errors come back as
 * `{code, error, message}` (server/src/error.rs).
 */

const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export interface AtticClientOptions {
  /** The server's API endpoint, ending in `/` (e.g. https://attic.example.com/). */
  endpoint: string;
  cache: string;
  token?: string | undefined;
  retry?: RetryOptions | undefined;
}

interface Call {
  method: Dispatcher.HttpMethod;
  url: URL;
  expect: number[];
  json?: unknown;
  headers?: Record<string, string>;
  /** A fresh body for each attempt (a retried upload re-reads the store). */
  body?: () => { stream: Readable; length: number };
  authorize: boolean;
}

const TOKEN_HINT =
  'give a token with push (or pull) permission for this cache: `cachix authtoken --server HOST --stdin`, or set CACHIX_AUTH_TOKEN';

/** A refusal by the server, with its status: `create` tells "no such cache" apart from the rest. */
export class AtticRefusal extends UserError {
  constructor(
    message: string,
    hint: string,
    readonly status: number,
  ) {
    super(message, hint);
  }
}

export class AtticClient {
  private endpoint: URL;
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
  private readonly firstAnswer = new FirstAnswer(
    () => `the attic server at ${this.endpoint.origin}`,
    'check the network and the cache URL',
  );

  constructor(private readonly options: AtticClientOptions) {
    registerSecret(options.token);
    this.endpoint = new URL(options.endpoint);
  }

  get endpointUrl(): string {
    return this.endpoint.href;
  }

  /** attic's client moves to the api_endpoint a cache's config names; never from https down to http. */
  useEndpoint(endpoint: string): void {
    let next: URL;
    try {
      next = new URL(endpoint.endsWith('/') ? endpoint : `${endpoint}/`);
    } catch {
      return;
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') return;
    if (this.endpoint.protocol === 'https:' && next.protocol !== 'https:') return;
    this.endpoint = next;
  }

  private apiUrl(route: string): URL {
    return new URL(`_api/v1/${route}`, this.endpoint);
  }

  async getCacheConfig(): Promise<AtticCacheConfig> {
    const url = this.apiUrl(`cache-config/${encodeURIComponent(this.options.cache)}`);
    const response = await this.call({ method: 'GET', url, expect: [200], authorize: true });
    const config = await this.json<AtticCacheConfig>(response, 'GET cache-config');
    if (typeof config !== 'object' || config === null) throw this.notAttic('GET cache-config');
    return config;
  }

  /** `POST /_api/v1/cache-config/{cache}`; false when the cache already exists. */
  async createCache(request: CreateCacheRequest): Promise<boolean> {
    const url = this.apiUrl(`cache-config/${encodeURIComponent(this.options.cache)}`);
    const response = await this.call({ method: 'POST', url, json: request, expect: [200, 400], authorize: true });
    if (response.statusCode === 200) {
      await response.body.dump();
      return true;
    }
    const answer = await this.json<{ error?: string; message?: string }>(response, 'POST cache-config');
    if (answer.error === 'CacheAlreadyExists') return false;
    throw new UserError(`the attic server refused to create cache ${this.options.cache}: ${answer.message ?? answer.error}`);
  }

  async getMissingPaths(hashParts: readonly string[]): Promise<string[]> {
    const url = this.apiUrl('get-missing-paths');
    const json = { cache: this.options.cache, store_path_hashes: hashParts };
    const response = await this.call({ method: 'POST', url, json, expect: [200], authorize: true });
    const answer = await this.json<{ missing_paths?: unknown }>(response, 'POST get-missing-paths');
    const missing = answer.missing_paths;
    if (!Array.isArray(missing) || missing.some((hash) => typeof hash !== 'string')) throw this.notAttic('POST get-missing-paths');
    return missing as string[];
  }

  /** `PUT /_api/v1/upload-path`: `openNar()` is called once per attempt and must yield exactly narSize bytes. */
  async uploadPath(
    narInfo: UploadPathNarInfo,
    openNar: () => AsyncIterable<Buffer>,
  ): Promise<{ result: UploadPathResult; sentBytes: number }> {
    const json = JSON.stringify(narInfo);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    let preamble: Buffer | undefined;
    if (Buffer.byteLength(json) >= NAR_INFO_PREAMBLE_THRESHOLD) {
      preamble = Buffer.from(json);
      headers['x-attic-nar-info-preamble-size'] = String(preamble.length);
    } else {
      headers['x-attic-nar-info'] = json;
    }
    const length = (preamble?.length ?? 0) + narInfo.nar_size;
    const body = (): { stream: Readable; length: number } => ({
      stream: Readable.from(withPreamble(preamble, openNar()), { objectMode: false, highWaterMark: 1 << 20 }),
      length,
    });
    const response = await this.call({ method: 'PUT', url: this.apiUrl('upload-path'), headers, body, expect: [200], authorize: true });
    // attic's client takes an answer it cannot read as "Uploaded".
    const text = await readLimited(response.body, MAX_ANSWER_BYTES, () => new Error('the attic upload answer is too large'));
    let result: UploadPathResult = { kind: 'Uploaded' };
    try {
      result = JSON.parse(text) as UploadPathResult;
    } catch {
      // as above
    }
    return { result, sentBytes: length };
  }

  /** GET under the cache's substituter endpoint (for verify); undefined on 404. */
  async getFromSubstituter(base: string, relativeUrl: string): Promise<Readable | undefined> {
    const url = new URL(relativeUrl, base.endsWith('/') ? base : `${base}/`);
    // The token goes only where the API itself lives: a cache config cannot send it elsewhere.
    const authorize = url.origin === this.endpoint.origin || url.origin === new URL(this.options.endpoint).origin;
    const response = await this.call({ method: 'GET', url, expect: [200, 404], authorize });
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    return response.body;
  }

  async readText(body: Readable, limit: number): Promise<string> {
    return readLimited(body, limit, () => new Error(`an answer from the attic server was larger than ${limit} bytes`));
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call(call: Call): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': 'cachix-any', ...call.headers };
    if (call.authorize && this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let text: string | undefined;
    if (call.json !== undefined) {
      text = JSON.stringify(call.json);
      headers['content-type'] = 'application/json';
    }
    const shown = `${call.method} ${call.url.origin}${call.url.pathname}`;
    try {
      return await withRetry(shown, () => this.attempt(call, headers, text), this.options.retry);
    } catch (error) {
      throw this.firstAnswer.unreachable(error) ?? error;
    }
  }

  private async attempt(call: Call, headers: Record<string, string>, text: string | undefined): Promise<Dispatcher.ResponseData> {
    let response: Dispatcher.ResponseData;
    const body = call.body?.();
    try {
      if (body) headers['content-length'] = String(body.length);
      response = await requestWatchingUpload(
        call.url,
        { method: call.method, headers, body: body?.stream ?? text, dispatcher: this.agent },
        body ? UPLOAD_LIMITS : undefined,
      );
      this.firstAnswer.heard();
    } catch (error) {
      body?.stream.destroy();
      throw this.firstAnswer.failure(error);
    }
    if (call.expect.includes(response.statusCode)) return response;
    const detail = await readLimited(response.body, 64 * 1024, () => new Error('too large')).catch(() => '');
    throw this.refusal(call, response.statusCode, detail, parseRetryAfter(response.headers['retry-after']));
  }

  /** A status as one line: attic's own error text when it sent one, and what to do for the ones users fix. */
  private refusal(call: Call, status: number, detail: string, retryAfterMs: number | undefined): Error {
    let error: string | undefined;
    let message: string | undefined;
    try {
      ({ error, message } = JSON.parse(detail) as { error?: string; message?: string });
    } catch {
      message = errorDetailOf(detail);
    }
    const { cache } = this.options;
    const server = this.endpoint.origin;
    if (status === 401 || status === 403) {
      // Without a token that can see the cache, attic answers 401 for a cache that does not exist too.
      const why = this.options.token ? 'refused the token' : 'needs a token';
      return new AtticRefusal(
        `the attic server ${server} ${why} for cache ${cache} (HTTP ${status}${error ? ` ${error}` : ''})`,
        TOKEN_HINT,
        status,
      );
    }
    if (error === 'NoSuchCache') {
      return new AtticRefusal(
        `no cache ${cache} on the attic server ${server}`,
        `check the name, or create it: cachix create NAME --url attic+${this.endpoint.href}${cache}`,
        status,
      );
    }
    const failure = new HttpStatusError(call.method, `${call.url.origin}${call.url.pathname}`, status, {
      retryAfterMs,
      detail: message ?? error,
    });
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      return new UserError(failure.message, 'the attic server refused the request; its log says why');
    }
    return failure;
  }

  private async json<T>(response: Dispatcher.ResponseData, what: string): Promise<T> {
    const text = await this.readText(response.body, MAX_ANSWER_BYTES);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw this.notAttic(what);
    }
  }

  private notAttic(what: string): UserError {
    return new UserError(
      `${this.endpoint.origin} answered ${what} with something that is not attic's JSON`,
      'check that the cache URL points at an attic server: attic+https://HOST/CACHE',
    );
  }
}

async function* withPreamble(preamble: Buffer | undefined, nar: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  if (preamble) yield preamble;
  yield* nar;
}
