import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent } from './undici-lean.js';
import { NotABinaryCacheError, UserError } from '../errors.js';
import { binaryCacheInfo, looksLikeMarkup, looksLikeNixCacheInfo } from '../nix/cache-info.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { formatNarInfo, MAX_NARINFO_BYTES, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import { registerSecret } from '../redact.js';
import {
  FILE_SERVER_CAPABILITIES,
  LOOKUP_CONCURRENCY,
  type BinaryCache,
  type CacheInfo,
  type ListedAbsence,
  type ListedFile,
  type NarUpload,
} from './cache.js';
import { authorizationHeader, publicBaseUrl, userInfoOf } from './http-authorization.js';
import { describeNotCacheFile, isHtml, readBody } from './http-body.js';
import { errorDetailOf, explainHttpError, FirstAnswer, HTTP_CREDENTIALS_HINT } from './http-errors.js';
import { WebDavFolders, type FolderAttempt } from './http-folders.js';
import { HttpLister } from './http-lister.js';
import { lookupPipelined } from './http-lookup.js';
import { NARINFO_ENTRIES_PER_LOOKUP } from './http-listed-lookup.js';
import { HttpStatusError, parseRetryAfter, withRetry, type RetryOptions } from './retry.js';
import { requestWatchingUpload, type UploadLimits } from './upload-watchdog.js';

/** From this many lookups on, they go pipelined (http-lookup.ts); fewer are not worth a connection of their own. */
const PIPELINE_MIN_LOOKUPS = 16;

export interface HttpCacheOptions {
  token?: string | undefined;
  netrcFile?: string | undefined;
  retry?: RetryOptions | undefined;
  /**
   * A response must start within headersMs and never stall longer than bodyMs; an upload must
   * never stall longer than bodyMs and be answered within headersMs of its end (tests shorten these).
   */
  timeouts?: { headersMs?: number; bodyMs?: number } | undefined;
  /** Added to the advice when the server refuses our credentials (see credentials.ts). */
  credentialsHint?: string | undefined;
  /** Where a one-line warning goes (credentials over plain http). */
  warn?: ((line: string) => void) | undefined;
}

interface SendOptions {
  /** Statuses returned to the caller; any other is an HttpStatusError (retried when 5xx/429). */
  expect: number[];
  writing?: boolean;
  headers?: Record<string, string>;
  /** Called per attempt, so a retried upload re-reads its body from the start. */
  body?: () => Readable | string | Uint8Array;
  /** The MKCOL tried before this upload was sent again, named when it still fails. */
  folderAttempt?: FolderAttempt | undefined;
}

class HttpCache implements BinaryCache {
  readonly description: string;
  readonly capabilities = FILE_SERVER_CAPABILITIES;
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly userInfo: { login: string; password: string } | undefined;
  private authorization: Promise<string | undefined> | undefined;
  private readonly firstAnswer: FirstAnswer;
  private readonly uploadLimits: UploadLimits;
  private readonly folders = new WebDavFolders(async (folderPath) => {
    const response = await this.send('MKCOL', folderPath, { expect: [200, 201, 204, 403, 404, 405, 409, 501], writing: true });
    await response.body.dump();
    return response.statusCode;
  });
  private readonly lister: HttpLister;

  constructor(
    url: URL,
    private readonly options: HttpCacheOptions,
  ) {
    this.uploadLimits = { idleMs: options.timeouts?.bodyMs ?? 60_000, headersMs: options.timeouts?.headersMs ?? 60_000 };
    this.base = publicBaseUrl(url);
    this.description = this.base.href.replace(/\/$/, '');
    this.firstAnswer = new FirstAnswer(this.description, 'check the cache URL, that the server is running, and the network');
    this.agent = new Agent({
      connections: LOOKUP_CONCURRENCY * 2,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeouts?.headersMs ?? 60_000,
      bodyTimeout: options.timeouts?.bodyMs ?? 60_000,
    });
    registerSecret(options.token);
    this.userInfo = userInfoOf(url);
    this.lister = new HttpLister(
      (method, relativeUrl, { expect, headers, body }) =>
        this.send(method, relativeUrl, { expect, headers, body: body === undefined ? undefined : () => body }),
      this.base,
      this.description,
    );
  }

  /** Asked once per cache: the token, the URL's user:password or the netrc entry (http-authorization.ts). */
  private authorizationHeader(): Promise<string | undefined> {
    this.authorization ??= authorizationHeader({
      ...this.options,
      userInfo: this.userInfo,
      base: this.base,
      description: this.description,
    });
    return this.authorization;
  }

  private async send(method: Dispatcher.HttpMethod, relativeUrl: string, options: SendOptions): Promise<Dispatcher.ResponseData> {
    const target = new URL(relativeUrl, this.base);
    const authorization = await this.authorizationHeader();
    const headers: Record<string, string> = { 'user-agent': 'cachix-any', ...options.headers };
    if (authorization) headers.authorization = authorization;
    /** The Server header of the last refusal, so the advice can fit the server that answered. */
    let server: string | undefined;
    try {
      return await withRetry(
        `${options.writing ? 'writing to' : 'reading from'} ${this.description}`,
        async () => {
          const given = options.body?.();
          const body =
            given instanceof Uint8Array && !Buffer.isBuffer(given) ? Buffer.from(given.buffer, given.byteOffset, given.byteLength) : given;
          let response: Dispatcher.ResponseData;
          try {
            // A streamed body (a NAR) is timed by progress, not by undici's clock (see upload-watchdog).
            response = await requestWatchingUpload(target, { method, headers, body, dispatcher: this.agent }, this.uploadLimits);
            this.firstAnswer.heard();
          } catch (error) {
            throw this.firstAnswer.failure(error);
          }
          if (options.expect.includes(response.statusCode)) return response;
          const location = response.headers.location;
          if (response.statusCode >= 300 && response.statusCode < 400 && location) {
            await response.body.dump();
            // Uploads cannot follow a redirect (the body is gone), and a cache that moved should be named where it is.
            throw new UserError(
              `${this.description} redirects ${method} ${relativeUrl} to ${new URL(String(location), target).href} (HTTP ${response.statusCode})`,
              'use the URL it redirects to as the cache URL (cachix create NAME --url URL)',
            );
          }
          server = typeof response.headers.server === 'string' ? response.headers.server : undefined;
          const detail = errorDetailOf(await readBody(response.body, 64 * 1024).catch(() => ''));
          throw new HttpStatusError(method, target.href, response.statusCode, {
            retryAfterMs: parseRetryAfter(response.headers['retry-after']),
            detail,
          });
        },
        this.options.retry,
      );
    } catch (error) {
      throw explainHttpError(error, {
        url: this.description,
        writing: options.writing ?? false,
        credentialsHint: this.options.credentialsHint ?? HTTP_CREDENTIALS_HINT,
        server,
        folderAttempt: options.folderAttempt,
      });
    }
  }

  async info(): Promise<CacheInfo> {
    const response = await this.send('GET', 'nix-cache-info', { expect: [200, 404] });
    if (response.statusCode === 404) {
      await response.body.dump();
      throw new UserError(
        `${this.description} has no nix-cache-info, so Nix will not use it as a binary cache`,
        'check the URL, or write one with `cachix create`',
      );
    }
    const text = await readBody(response.body, MAX_NARINFO_BYTES, `${this.description}/nix-cache-info`);
    if (!looksLikeNixCacheInfo(text)) {
      throw new NotABinaryCacheError(
        this.description,
        `its nix-cache-info is ${describeNotCacheFile(text, response.headers['content-type'])}`,
      );
    }
    const info = binaryCacheInfo(text, this.description);
    // Reads that needed credentials mean Nix needs them too (netrc), so the cache is not public.
    info.isPublic = (await this.authorizationHeader()) === undefined;
    return info;
  }

  /** Files beside the narinfos (`.ls`): the root holds one entry more per path than narinfo lookups allow for. */
  listedAbsent(hashParts: readonly string[], suffix: string): Promise<ListedAbsence> {
    return this.lister.absent(hashParts, suffix, NARINFO_ENTRIES_PER_LOOKUP + 1);
  }

  async missing(hashParts: readonly string[]): Promise<Set<string>> {
    // From enough lookups on, one listing of the root answers them all: a narinfo counts only when listed.
    const listed = await this.lister.absent(hashParts, '.narinfo', NARINFO_ENTRIES_PER_LOOKUP);
    const missing = listed.absent;
    let unique = listed.undecided;
    if (unique.length >= PIPELINE_MIN_LOOKUPS) {
      const authorization = await this.authorizationHeader();
      const { present, absent } = await lookupPipelined(unique, { base: this.base, authorization, idleMs: this.uploadLimits.headersMs });
      for (const hashPart of absent) missing.add(hashPart);
      // Only a plain 200 counts as present: whatever was not answered plainly is asked again below.
      unique = unique.filter((hashPart) => !present.has(hashPart) && !absent.has(hashPart));
    }
    await forEachConcurrently(unique, LOOKUP_CONCURRENCY, async (hashPart) => {
      // Nix treats 403 as absent too: S3-backed servers answer 403 for keys they cannot list.
      const response = await this.send('HEAD', `${hashPart}.narinfo`, { expect: [200, 403, 404] });
      await response.body.dump();
      if (response.statusCode === 200 && isHtml(response.headers['content-type'])) {
        throw new NotABinaryCacheError(this.description, `${hashPart}.narinfo is an HTML page, not a narinfo`);
      }
      if (response.statusCode !== 200) missing.add(hashPart);
    });
    return missing;
  }

  async upload(nar: NarUpload, narInfo: NarInfo): Promise<void> {
    await this.put(nar.narUrl, 'application/x-nix-nar', () => nar.open(), nar.fileSize);
    // Only now, with every byte of the NAR stored, may Nix learn that the path exists.
    await this.put(`${hashPartOf(narInfo.storePath)}.narinfo`, 'text/x-nix-narinfo', () => formatNarInfo(narInfo));
  }

  private async put(
    relativeUrl: string,
    contentType: string,
    body: () => Readable | string | Uint8Array,
    size?: number,
    contentEncoding?: string,
  ): Promise<void> {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (contentEncoding) headers['content-encoding'] = contentEncoding;
    if (size !== undefined) headers['content-length'] = String(size);
    const stored = [200, 201, 204];
    let response = await this.send('PUT', relativeUrl, { expect: [...stored, 404, 409], writing: true, headers, body });
    if (!stored.includes(response.statusCode)) {
      await response.body.dump();
      // The folder to put it in is missing (rclone answers 404, RFC 4918 says 409): make it, then once more.
      const folderAttempt = await this.folders.makeParentOf(new URL(relativeUrl, this.base).pathname);
      response = await this.send('PUT', relativeUrl, { expect: stored, writing: true, headers, body, folderAttempt });
    }
    await response.body.dump();
  }

  async getNarInfo(hashPart: string): Promise<string | undefined> {
    const response = await this.send('GET', `${hashPart}.narinfo`, { expect: [200, 403, 404] });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return undefined;
    }
    const text = await readBody(response.body, MAX_NARINFO_BYTES, `${this.description}/${hashPart}.narinfo`);
    if (looksLikeMarkup(text) || isHtml(response.headers['content-type'])) {
      throw new NotABinaryCacheError(
        this.description,
        `${hashPart}.narinfo is ${describeNotCacheFile(text, response.headers['content-type'])}`,
      );
    }
    return text;
  }

  async getFile(relativeUrl: string): Promise<Readable | undefined> {
    const response = await this.send('GET', relativeUrl, { expect: [200, 403, 404] });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return undefined;
    }
    return response.body;
  }

  async writeCacheInfo(text: string): Promise<void> {
    await this.put('nix-cache-info', 'text/x-nix-cache-info', () => text);
  }

  /** WebDAV PROPFIND (Depth 1), else nginx's JSON autoindex; a server with neither says so. */
  list(folder: string): Promise<ListedFile[]> {
    return this.lister.list(folder);
  }

  /** 404: another client deleted it first, which is not an error but not our deletion either. */
  async deleteFile(relativeUrl: string): Promise<boolean> {
    const response = await this.send('DELETE', relativeUrl, { expect: [200, 202, 204, 404], writing: true });
    await response.body.dump();
    return response.statusCode !== 404;
  }

  /** One PUT: nginx's WebDAV writes the body to a temporary file and renames it into place. */
  async putFile(relativeUrl: string, body: string | Uint8Array, contentType: string, contentEncoding?: string): Promise<void> {
    await this.put(relativeUrl, contentType, () => body, undefined, contentEncoding);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** A cache served over HTTP(S) that takes PUT, as `nix copy --to http://…` expects (nginx WebDAV and the like). */
export function createHttpCache(url: URL, options: HttpCacheOptions = {}): BinaryCache {
  return new HttpCache(url, options);
}
