// One call to the cachix API (or to the object store its presigned URLs name): retried on 5xx,
// 429 and dropped connections, a NAR part timed by its progress, and the answers no retry can fix
// (a refused token, no such cache, a page that is not JSON) said in one line.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent } from './undici-lean.js';
import { UserError } from '../errors.js';
import { registerSecret } from '../redact.js';
import { errorDetailOf, FirstAnswer } from './http-errors.js';
import { readLimited } from '../util/read-limited.js';
import { HttpStatusError, parseRetryAfter, parseRetryAfterBody, withRetry, type RetryOptions } from './retry.js';
import { requestWatchingUpload, UPLOAD_LIMITS } from './upload-watchdog.js';

export interface CachixApiClientOptions {
  name: string;
  host: string;
  token?: string | undefined;
  retry?: RetryOptions | undefined;
}

const TOKEN_HINT = 'run `cachix authtoken <token>` or set CACHIX_AUTH_TOKEN';
export const API_HOST_HINT = 'check that --host (or CACHIX_HOST, or host in the config) points at a cachix API server';
/** An error body is shown to the user, so only its first line and only this much of it. */
const MAX_DETAIL = 200;

function readText(body: Readable, limit: number): Promise<string> {
  return readLimited(body, limit, () => new Error(`a response from the cachix API was larger than ${limit} bytes`));
}

export interface CallOptions {
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

/** The calls of one client: one connection pool, one token. */
export class CachixApiCalls {
  private readonly agent: Agent;
  private readonly firstAnswer: FirstAnswer;

  constructor(private readonly options: CachixApiClientOptions) {
    registerSecret(options.token);
    this.firstAnswer = new FirstAnswer(
      `the cachix API at ${options.host}`,
      'check the network and --host; a cache of your own must be named as in your config (see cachix create)',
    );
    this.agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
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
    const shown = CachixApiCalls.shown(options.method, options.url);
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

  async json<T>(response: Dispatcher.ResponseData, what: string): Promise<T> {
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

  readText(body: Readable, limit: number): Promise<string> {
    return readText(body, limit);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
