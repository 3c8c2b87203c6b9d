import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { NotABinaryCacheError, UserError } from '../errors.js';
import { binaryCacheInfo, looksLikeMarkup, looksLikeNixCacheInfo } from '../nix/cache-info.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { readLimited } from '../util/read-limited.js';
import { formatNarInfo, MAX_NARINFO_BYTES, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import { findNetrcCredentials, parseNetrc } from '../netrc.js';
import { registerSecret } from '../redact.js';
import { isLoopbackHost } from './credentials.js';
import { LOOKUP_CONCURRENCY, type BinaryCache, type CacheInfo, type ListedFile, type NarUpload, type CacheCapabilities } from './cache.js';
import { errorDetailOf, explainHttpError, FirstAnswer, HTTP_CREDENTIALS_HINT } from './http-errors.js';
import { WebDavFolders, type FolderAttempt } from './http-folders.js';
import { lookupPipelined } from './http-lookup.js';
import { LISTING_MIN_LOOKUPS, listRootNames } from './http-listed-lookup.js';
import { cannotListError, MAX_LISTING_BYTES, parseAutoindexJson, parsePropfindListing, PROPFIND_BODY } from './http-listing.js';
import { HttpStatusError, parseRetryAfter, withRetry, type RetryOptions } from './retry.js';
import { requestWatchingUpload, type UploadLimits } from './upload-watchdog.js';

export const DEFAULT_NETRC_FILE = '/etc/nix/netrc';

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

/** The URL without user:password, ending in '/' so relative names resolve under it. */
function publicBaseUrl(url: URL): URL {
  const base = new URL(url.href);
  base.username = '';
  base.password = '';
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

function readBody(body: Dispatcher.ResponseData['body'], limit: number, what = 'a response from the cache'): Promise<string> {
  return readLimited(
    body,
    limit,
    () => new UserError(`${what} is larger than ${limit} bytes, which no real one is`, 'check what the server serves at that URL'),
    // A body that stalls (bodyTimeout) or is cut off: say what was being read, not just undici's words.
    (error, bytesRead) =>
      new UserError(
        `reading ${what} failed after ${bytesRead} bytes: ${(error as Error).message}`,
        'the server stopped sending; try again later, or check the server',
        1,
      ),
  );
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
  readonly capabilities: CacheCapabilities = {
    signs: 'client',
    substituter: 'cache-url',
    staging: { kind: 'temporary' },
    local: false,
    pins: 'files',
  };
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
    if (url.password) registerSecret(decodeURIComponent(url.password));
    this.userInfo = url.username ? { login: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : undefined;
  }

  /** Bearer token if given; else user:password in the URL; else the netrc entry for the host, as Nix's curl would. */
  private authorizationHeader(): Promise<string | undefined> {
    this.authorization ??= (async () => {
      if (this.options.token) return `Bearer ${this.options.token}`;
      let credentials = this.userInfo;
      if (!credentials) {
        const netrcFile = this.options.netrcFile ?? DEFAULT_NETRC_FILE;
        const text = await readFile(netrcFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
          // No netrc file is the usual case: Nix goes on without credentials, so do we.
          if (error.code === 'ENOENT') return '';
          throw new UserError(`cannot read the netrc file ${netrcFile}: ${error.message}`, 'check its permissions, or set netrc-file');
        });
        credentials = findNetrcCredentials(parseNetrc(text), this.base.hostname);
      }
      if (!credentials) return undefined;
      registerSecret(credentials.password);
      return `Basic ${Buffer.from(`${credentials.login}:${credentials.password}`).toString('base64')}`;
    })();
    void this.authorization.then(
      (header) => {
        if (header && this.base.protocol === 'http:' && !isLoopbackHost(this.base.hostname)) {
          this.options.warn?.(`warning: credentials for ${this.description} go over plain http, readable by anyone on the way; use https`);
        }
      },
      () => undefined,
    );
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

  /** The server refused to list its root for lookups: HEADs from then on, in this process. */
  private listingRefused = false;

  /** From LISTING_MIN_LOOKUPS on, one listing of the root answers every lookup: a narinfo counts only when listed. */
  private async missingByListing(unique: readonly string[]): Promise<Set<string> | undefined> {
    if (unique.length < LISTING_MIN_LOOKUPS || this.listingRefused) return undefined;
    // Anything wrong with the listing (an odd answer, a dropped connection) is asked again by HEAD.
    const listing = await listRootNames(
      (method, headers, body, expect) => this.send(method, '', { expect, headers, body: body === undefined ? undefined : () => body }),
      this.base,
      this.listing,
      unique.length,
    ).catch(() => undefined);
    if (listing?.outcome === 'refused') this.listingRefused = true;
    if (listing?.outcome !== 'listed') return undefined;
    this.listing = listing.kind;
    return new Set(unique.filter((hashPart) => !listing.names.has(`${hashPart}.narinfo`)));
  }

  async missing(hashParts: readonly string[]): Promise<Set<string>> {
    let unique = [...new Set(hashParts)];
    const listed = await this.missingByListing(unique);
    if (listed) return listed;
    let missing = new Set<string>();
    if (unique.length >= PIPELINE_MIN_LOOKUPS) {
      const authorization = await this.authorizationHeader();
      const { present, absent } = await lookupPipelined(unique, { base: this.base, authorization, idleMs: this.uploadLimits.headersMs });
      missing = absent;
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

  /** Which listing the server answered first; asked once per cache. */
  private listing: 'propfind' | 'autoindex' | undefined;

  /** WebDAV PROPFIND (Depth 1), else nginx's JSON autoindex; a server with neither says so. */
  async list(folder: string): Promise<ListedFile[]> {
    const folderUrl = new URL(folder, this.base);
    if (this.listing !== 'autoindex') {
      const response = await this.send('PROPFIND', folder, {
        expect: [207, 400, 403, 404, 405, 501],
        headers: { depth: '1', 'content-type': 'application/xml; charset=utf-8' },
        body: () => PROPFIND_BODY,
      });
      if (response.statusCode === 207) {
        this.listing = 'propfind';
        return parsePropfindListing(
          await readBody(response.body, MAX_LISTING_BYTES, `the listing of ${folderUrl.href}`),
          folderUrl,
          folder,
        );
      }
      await response.body.dump();
      if (this.listing === 'propfind') {
        if (response.statusCode === 404) return [];
        throw cannotListError(this.description, `PROPFIND ${folder || '/'} answered ${response.statusCode}`);
      }
    }
    const response = await this.send('GET', folder, { expect: [200, 403, 404, 405], headers: { accept: 'application/json' } });
    const type = String(response.headers['content-type'] ?? '');
    if (response.statusCode === 200 && type.includes('json')) {
      this.listing = 'autoindex';
      return parseAutoindexJson(await readBody(response.body, MAX_LISTING_BYTES, `the listing of ${folderUrl.href}`), folder);
    }
    await response.body.dump();
    // A folder nothing was written to yet; the root itself missing means no listing at all.
    if (response.statusCode === 404 && folder !== '') return [];
    throw cannotListError(
      this.description,
      `PROPFIND and GET ${folder || '/'} as JSON answered ${response.statusCode === 200 ? `200 with ${type || 'no content type'}` : response.statusCode}`,
    );
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

function isHtml(contentType: string | string[] | undefined): boolean {
  return /^\s*(text\/html|application\/xhtml)/i.test(String(contentType ?? ''));
}

/** What came instead of a cache file, in a few words (never the page itself). */
function describeNotCacheFile(text: string, contentType: string | string[] | undefined): string {
  if (isHtml(contentType) || /^\s*<(!doctype html|html)/i.test(text)) return 'an HTML page';
  if (looksLikeMarkup(text)) return 'markup, not a cache file';
  return `not one (no StoreDir, WantMassQuery or Priority line in ${text.length} bytes)`;
}
