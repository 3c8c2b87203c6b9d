import { createHash, createHmac, randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseHash } from '../../src/nix/hash.js';
import { formatNarInfo, narInfoFingerprint } from '../../src/nix/narinfo.js';
import { parseStorePathBaseName } from '../../src/nix/store-path.js';
import { formatPublicKey, parsePublicKey, publicKeyOf, signFingerprint, verifySignature, type SigningKey } from '../../src/nix/signing.js';
import { startS3rver, type RunningS3rver } from './s3rver.js';

/*
 * A stand-in for the cachix.org API, the one double these tests allow (no cachix server runs
 * here). It follows the published API of github.com/cachix/cachix: cachix-api/src/Cachix/API.hs
 * routes under /api/v1, JSON as Cachix.Types.{BinaryCache,NarInfoCreate,MultipartUpload}. Parts
 * go to a real s3rver through SigV4-presigned URLs, as they go to S3/R2 behind cachix.org, and a
 * completed upload is served at the cache's `uri` as a real Nix binary cache.
 */

export interface DoubleCache {
  name: string;
  /** Keys the owner registered (self-signed caches); `POST /key` adds to them. */
  publicSigningKeys: string[];
  /**
   * The key cachix.org keeps for a cache it signs itself: published first, and used for every
   * narinfo whose cSig is null (token-only pushes). Without one, a null cSig is refused.
   */
  managedSigningKey?: SigningKey;
  isPublic: boolean;
  permission?: 'Read' | 'Write' | 'Admin';
  preferredCompressionMethod?: 'ZSTD' | 'XZ';
}

/** A `POST /pin` as the double received it (Cachix.Types.PinCreate). */
export interface RecordedPin {
  cache: string;
  name: string;
  storePath: string;
  artifacts: string[];
  keep: null | { tag: 'Days' | 'Revisions'; contents: number } | { tag: 'Forever' };
}

export interface RecordedCall {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
}

interface Upload {
  cache: string;
  key: string;
  extension: 'zst' | 'xz';
  /** Base64 Content-MD5 the client declared for each part it asked a URL for. */
  partMD5: Map<number, string>;
}

export interface CachixApiDouble {
  url: string;
  /** The substituter URI the double publishes for a cache (its `uri`). */
  uriOf(name: string): string;
  calls: RecordedCall[];
  narinfos: Map<string, string>;
  pins: RecordedPin[];
  /** The sizes of the parts each completed upload was made of, by narId. */
  completedPartSizes: Map<string, number[]>;
  /** Every key a cache publishes now: its managed key first, then registered ones. */
  publicKeysOf(name: string): string[];
  /** How long presigned part URLs live (the service: 300 s); a test may shorten it. */
  presignExpirySeconds: number;
  /** Multipart uploads neither completed nor aborted, by uploadId. */
  openUploads: Map<string, Upload>;
  s3: RunningS3rver;
  /** Presigned part URLs point at this origin (default s3rver's); a fault proxy can go here. */
  partUploadOrigin: string;
  stop(): Promise<void>;
}

const REGION = 'us-east-1';
/** Cachix.API's BinaryCacheAPI routes this double serves, after `/api/v1/cache/:name`. */
const ROUTES = new Set([
  'GET ',
  'POST narinfo',
  'POST multipart-nar',
  'POST multipart-nar/:narId',
  'POST multipart-nar/:narId/complete',
  'POST multipart-nar/:narId/abort',
  'POST key',
  'POST pin',
]);
/** S3's EntityTooSmall: every part but the last must be at least 5 MiB. */
const MIN_PART_BYTES = 5 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A SigV4 query-signed URL (AWS "Authenticating Requests: Using Query Parameters"), as S3 presigners make. */
export function presignS3(method: string, url: URL, signedHeaders: Record<string, string> = {}, expiresSeconds = 900): string {
  const amzDate = new Date().toISOString().replace(/[:-]|\.\d{3}/g, '');
  const scope = `${amzDate.slice(0, 8)}/${REGION}/s3/aws4_request`;
  const headers: Record<string, string> = { host: url.host };
  for (const [name, value] of Object.entries(signedHeaders)) headers[name.toLowerCase()] = value.trim();
  const names = Object.keys(headers).sort();
  const query = new URLSearchParams(url.search);
  query.set('X-Amz-Algorithm', 'AWS4-HMAC-SHA256');
  query.set('X-Amz-Credential', `S3RVER/${scope}`);
  query.set('X-Amz-Date', amzDate);
  query.set('X-Amz-Expires', String(expiresSeconds));
  query.set('X-Amz-SignedHeaders', names.join(';'));
  const canonicalQuery = [...query]
    .map(([key, value]) => `${rfc3986(key)}=${rfc3986(value)}`)
    .sort()
    .join('&');
  const canonicalRequest = [
    method,
    url.pathname,
    canonicalQuery,
    names.map((name) => `${name}:${headers[name]}\n`).join(''),
    names.join(';'),
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key: Buffer = Buffer.from('AWS4S3RVER');
  for (const part of [amzDate.slice(0, 8), REGION, 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  return `${url.origin}${url.pathname}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `malformed JSON: ${(error as Error).message}`);
  }
}

function field<T>(object: Record<string, unknown>, name: string, check: (value: unknown) => boolean, what: string): T {
  if (!check(object[name])) throw new HttpError(400, `narInfoCreate.${name} must be ${what}`);
  return object[name] as T;
}

const isString = (value: unknown): boolean => typeof value === 'string';
const isCount = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 0;

/** NarInfoCreate JSON to narinfo text, checking what cachix's server would refuse. */
function narInfoFrom(
  create: unknown,
  cache: DoubleCache,
  publicKeys: string[],
  url: string,
  compression: string,
): { hashPart: string; text: string; fileHex: string; fileSize: number } {
  if (typeof create !== 'object' || create === null) throw new HttpError(400, 'narInfoCreate must be an object');
  const value = create as Record<string, unknown>;
  const storeHash = field<string>(value, 'cStoreHash', isString, 'a string');
  const storeSuffix = field<string>(value, 'cStoreSuffix', isString, 'a string');
  const narSize = field<number>(value, 'cNarSize', isCount, 'a whole number');
  const fileSize = field<number>(value, 'cFileSize', isCount, 'a whole number');
  const references = field<string[]>(value, 'cReferences', (v) => Array.isArray(v) && v.every(isString), 'a list of strings');
  const deriver = field<string>(value, 'cDeriver', isString, 'a string');
  const sig = field<string | null>(value, 'cSig', (v) => v === null || isString(v), 'a string or null');
  const fileHex = field<string>(
    value,
    'cFileHash',
    (v) => isString(v) && /^[0-9a-f]{64}$/.test(v as string),
    '64 hex digits (base16 sha256)',
  );
  if (narSize === 0) throw new HttpError(400, 'NarSizeIsZero'); // Cachix.Types.NarInfoCreate.isNarInfoCreateValid
  let narHash;
  try {
    narHash = parseHash(field<string>(value, 'cNarHash', isString, 'a string'));
    for (const base of [`${storeHash}-${storeSuffix}`, ...references, ...(deriver === 'unknown-deriver' ? [] : [deriver])])
      parseStorePathBaseName(base);
  } catch (error) {
    throw new HttpError(400, (error as Error).message);
  }
  const info = {
    storePath: `/nix/store/${storeHash}-${storeSuffix}`,
    url,
    compression,
    fileHash: { algorithm: 'sha256' as const, digest: Uint8Array.from(Buffer.from(fileHex, 'hex')) },
    fileSize,
    narHash,
    narSize,
    references: references.map((base) => `/nix/store/${base}`),
    deriver: deriver === 'unknown-deriver' ? undefined : `/nix/store/${deriver}`,
    sigs: [] as string[],
  };
  const fingerprint = narInfoFingerprint(info);
  if (sig !== null) {
    // The client sends the bare signature; the service writes it under the cache's key name.
    const key = publicKeys.map(parsePublicKey).find((candidate) => verifySignature(`${candidate.name}:${sig}`, fingerprint, [candidate]));
    if (!key) throw new HttpError(400, `cSig does not verify with any public signing key of cache ${cache.name}`);
    info.sigs.push(`${key.name}:${sig}`);
  } else if (cache.managedSigningKey) {
    // Token-only push: the service signs with the key it keeps for the cache.
    info.sigs.push(signFingerprint(cache.managedSigningKey, fingerprint));
  } else {
    throw new HttpError(400, `cache ${cache.name} is signed by its owner: cSig is required`);
  }
  return { hashPart: storeHash, text: formatNarInfo(info), fileHex, fileSize };
}

const isKeep = (keep: unknown): boolean => {
  if (keep === null || keep === undefined) return true;
  const { tag, contents } = keep as { tag?: unknown; contents?: unknown };
  if (tag === 'Forever') return contents === undefined;
  return (tag === 'Days' || tag === 'Revisions') && Number.isSafeInteger(contents);
};

/** Cachix.Types.PinCreate, as aeson decodes it: keep is null or {tag, contents}; Forever has no contents. */
function pinOf(cache: DoubleCache, body: unknown): RecordedPin {
  const pin = body as Partial<Record<keyof RecordedPin, unknown>> | null;
  if (
    typeof pin?.name !== 'string' ||
    typeof pin.storePath !== 'string' ||
    !Array.isArray(pin.artifacts) ||
    !pin.artifacts.every(isString) ||
    !isKeep(pin.keep)
  )
    throw new HttpError(400, 'the body must be a PinCreate {name, storePath, artifacts, keep}');
  return {
    cache: cache.name,
    name: pin.name,
    storePath: pin.storePath,
    artifacts: pin.artifacts as string[],
    keep: (pin.keep ?? null) as RecordedPin['keep'],
  };
}

export async function startCachixApiDouble(options: { caches: DoubleCache[]; token?: string }): Promise<CachixApiDouble> {
  const s3 = await startS3rver('cachix-double');
  const caches = new Map(options.caches.map((cache) => [cache.name, cache]));
  const calls: RecordedCall[] = [];
  const narinfos = new Map<string, string>();
  const pins: RecordedPin[] = [];
  const completedPartSizes = new Map<string, number[]>();
  const registeredKeys = new Map(options.caches.map((cache) => [cache.name, [...cache.publicSigningKeys]]));
  const publicKeysOf = (name: string): string[] => {
    const cache = caches.get(name);
    const managed = cache?.managedSigningKey ? [formatPublicKey(publicKeyOf(cache.managedSigningKey))] : [];
    return [...managed, ...(registeredKeys.get(name) ?? [])];
  };
  const openUploads = new Map<string, Upload>();
  const objectUrl = (key: string, origin = s3.endpoint): URL => new URL(`${origin}/${s3.bucket}/${key.split('/').map(rfc3986).join('/')}`);
  // eslint-disable-next-line prefer-const -- the handlers below are defined before the object they read
  let double: CachixApiDouble;

  async function s3Call(method: string, url: URL, body?: string): Promise<string> {
    const response = await fetch(presignS3(method, url), { method, body });
    const text = await response.text();
    if (!response.ok) throw new HttpError(502, `object store answered ${response.status}: ${text.slice(0, 200)}`);
    return text;
  }

  /** Who is asking: 'ok' with the token (Bearer, or netrc's Basic password), 'none' without, 'bad' with another. */
  function credentials(request: IncomingMessage): 'ok' | 'none' | 'bad' {
    const header = request.headers.authorization;
    if (options.token === undefined) return 'ok';
    if (!header) return 'none';
    const bearer = /^Bearer (.+)$/.exec(header)?.[1];
    const basic = /^Basic (.+)$/.exec(header)?.[1];
    const given = bearer ?? (basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').slice(1).join(':') : undefined);
    return given === options.token ? 'ok' : 'bad';
  }

  function authorize(request: IncomingMessage, cache: DoubleCache, writing: boolean): void {
    const who = credentials(request);
    if (who === 'bad' || (who === 'none' && (writing || !cache.isPublic))) throw new HttpError(401, 'Unauthorized');
    if (writing && (cache.permission ?? 'Admin') === 'Read') throw new HttpError(403, `no write access to cache ${cache.name}`);
  }

  async function api(request: IncomingMessage, url: URL, segments: string[], body: Buffer): Promise<{ status: number; json?: unknown }> {
    const cache = caches.get(decodeURIComponent(segments[0] ?? ''));
    if (!cache) throw new HttpError(404, 'cache not found');
    const route = `${request.method} ${segments
      .slice(1)
      .map((s, i) => (i === 1 ? ':narId' : s))
      .join('/')}`;
    if (!ROUTES.has(route)) throw new HttpError(404, `no route ${request.method} ${url.pathname}`);
    const query = url.searchParams;
    switch (route) {
      case 'GET ': {
        authorize(request, cache, false);
        const { name, isPublic } = cache;
        const publicSigningKeys = publicKeysOf(name);
        const permission = cache.permission ?? 'Admin';
        return {
          status: 200,
          json: {
            name,
            uri: double.uriOf(name),
            isPublic,
            publicSigningKeys,
            githubUsername: '',
            permission,
            preferredCompressionMethod: cache.preferredCompressionMethod ?? 'ZSTD',
          },
        };
      }
      case 'POST narinfo': {
        authorize(request, cache, false);
        const hashes = parseJson(body);
        if (!Array.isArray(hashes) || !hashes.every(isString)) throw new HttpError(400, 'the body must be a JSON list of store hashes');
        return { status: 200, json: (hashes as string[]).filter((hash) => !narinfos.has(`${cache.name}/${hash}`)) };
      }
      case 'POST multipart-nar': {
        authorize(request, cache, true);
        const compression = query.get('compression');
        if (compression !== 'zst' && compression !== 'xz') throw new HttpError(400, `Wrong compression method: ${compression}`);
        const narId = randomUUID();
        const key = `${cache.name}/nar/${narId}.nar.${compression}`;
        const xml = await s3Call('POST', new URL(`${objectUrl(key).href}?uploads=`));
        const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(xml)?.[1];
        if (!uploadId) throw new HttpError(502, 'object store gave no UploadId');
        openUploads.set(uploadId, { cache: cache.name, key, extension: compression, partMD5: new Map() });
        return { status: 200, json: { narId, uploadId } };
      }
      case 'POST key': {
        // Cachix.Types.SigningKeyCreate: the bare base64 public key of a key the owner made.
        authorize(request, cache, true);
        const created = parseJson(body) as { publicKey?: unknown };
        const publicKey = created?.publicKey;
        if (typeof publicKey !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(publicKey) || Buffer.from(publicKey, 'base64').length !== 32)
          throw new HttpError(400, 'publicKey must be a base64 ed25519 public key');
        const keys = registeredKeys.get(cache.name)!;
        keys.push(`${cache.name}.cachix.org-${keys.length + 1}:${publicKey}`);
        return { status: 200 };
      }
      case 'POST pin': {
        authorize(request, cache, true);
        const pin = pinOf(cache, parseJson(body));
        const hashPart = /^\/nix\/store\/([0-9a-z]{32})-/.exec(pin.storePath)?.[1];
        if (!hashPart) throw new HttpError(400, 'storePath must be a full store path');
        // A pin keeps a path the cache holds; one it does not hold cannot be pinned.
        if (!narinfos.has(`${cache.name}/${hashPart}`)) throw new HttpError(404, `${pin.storePath} is not in cache ${cache.name}`);
        pins.push(pin);
        return { status: 200 };
      }
    }
    authorize(request, cache, true);
    const narId = segments[2] ?? '';
    const uploadId = query.get('uploadId');
    if (!uploadId) throw new HttpError(400, 'the uploadId query parameter is required');
    const upload = openUploads.get(uploadId);
    if (!upload || upload.cache !== cache.name || !upload.key.endsWith(`/${narId}.nar.${upload.extension}`))
      throw new HttpError(404, 'no such upload');
    switch (route) {
      case 'POST multipart-nar/:narId': {
        const partNumber = Number(query.get('partNumber'));
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000)
          throw new HttpError(400, 'partNumber must be 1 to 10000');
        const signing = parseJson(body) as { contentMD5?: unknown };
        if (typeof signing?.contentMD5 !== 'string' || Buffer.from(signing.contentMD5, 'base64').length !== 16)
          throw new HttpError(400, 'contentMD5 must be a base64 MD5 digest');
        upload.partMD5.set(partNumber, signing.contentMD5);
        const partUrl = objectUrl(upload.key, double.partUploadOrigin);
        partUrl.search = `partNumber=${partNumber}&uploadId=${uploadId}`;
        const uploadUrl = presignS3('PUT', partUrl, { 'content-md5': signing.contentMD5 }, double.presignExpirySeconds);
        return { status: 200, json: { uploadUrl } };
      }
      case 'POST multipart-nar/:narId/complete': {
        const completion = parseJson(body) as { parts?: unknown; narInfoCreate?: unknown };
        // CompletedParts is `Maybe (NonEmpty CompletedPart)`: null is accepted, [] is not.
        const parts = completion?.parts === null ? [] : completion?.parts;
        if (!Array.isArray(parts) || (parts.length === 0 && completion.parts !== null))
          throw new HttpError(400, 'parts must be null or a non-empty list');
        parts.forEach((part: { partNumber?: unknown; eTag?: unknown }, index) => {
          if (part?.partNumber !== index + 1 || typeof part.eTag !== 'string')
            throw new HttpError(400, `parts[${index}] must be {partNumber: ${index + 1}, eTag}, sorted by partNumber`);
          // S3 compares ETags without quotes; a part's ETag is its MD5, which the URL was signed for.
          const md5 = upload.partMD5.get(index + 1);
          if (!md5 || Buffer.from(md5, 'base64').toString('hex') !== part.eTag.replace(/"/g, ''))
            throw new HttpError(400, `part ${index + 1}: ETag does not match its Content-MD5`);
        });
        const partSizes: number[] = [];
        for (const part of parts as { partNumber: number }[]) {
          const size = (await stat(join(s3.directory, s3.bucket, '._S3rver_uploads', uploadId, String(part.partNumber)))).size;
          if (size < MIN_PART_BYTES && partSizes.length < parts.length - 1)
            throw new HttpError(400, `EntityTooSmall: part ${part.partNumber} has ${size} bytes; every part but the last needs 5 MiB`);
          partSizes.push(size);
        }
        const nar = narInfoFrom(
          completion.narInfoCreate,
          cache,
          publicKeysOf(cache.name),
          `nar/${narId}.nar.${upload.extension}`,
          upload.extension === 'zst' ? 'zstd' : 'xz',
        );
        const xmlParts = parts
          .map(
            (part: { partNumber: number; eTag: string }) =>
              `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${part.eTag}</ETag></Part>`,
          )
          .join('');
        if (parts.length > 0) {
          const completeUrl = objectUrl(upload.key);
          completeUrl.search = `uploadId=${uploadId}`;
          await s3Call('POST', completeUrl, `<CompleteMultipartUpload>${xmlParts}</CompleteMultipartUpload>`);
        } else {
          await s3Call('PUT', objectUrl(upload.key), '');
        }
        openUploads.delete(uploadId);
        const stored = Buffer.from(await (await fetch(objectUrl(upload.key))).arrayBuffer());
        if (stored.length !== nar.fileSize || createHash('sha256').update(stored).digest('hex') !== nar.fileHex) {
          throw new HttpError(400, 'the uploaded NAR does not match cFileHash/cFileSize');
        }
        narinfos.set(`${cache.name}/${nar.hashPart}`, nar.text);
        completedPartSizes.set(narId, partSizes);
        // Servant's `Post '[JSON] NoContent`: 200 with an empty body.
        return { status: 200 };
      }
      case 'POST multipart-nar/:narId/abort': {
        openUploads.delete(uploadId);
        // s3rver 3 has no AbortMultipartUpload (DELETE ?uploadId); drop its upload directory instead.
        await rm(join(s3.directory, s3.bucket, '._S3rver_uploads', uploadId), { recursive: true, force: true });
        return { status: 200 };
      }
    }
    throw new HttpError(404, `no route ${request.method} ${url.pathname}`);
  }

  /** The substituter at `uri`: nix-cache-info, narinfos, and NARs read from the object store. */
  async function substituter(request: IncomingMessage, response: ServerResponse, segments: string[]): Promise<number> {
    const cache = caches.get(decodeURIComponent(segments[0] ?? ''));
    if (!cache) throw new HttpError(404, 'cache not found');
    authorize(request, cache, false);
    const file = segments.slice(1).join('/');
    const reply = (status: number, type: string, text: string): number => {
      response.writeHead(status, { 'content-type': type }).end(request.method === 'HEAD' ? undefined : text);
      return status;
    };
    if (file === 'nix-cache-info') return reply(200, 'text/x-nix-cache-info', 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n');
    const hashPart = /^([0-9a-z]{32})\.narinfo$/.exec(file)?.[1];
    if (hashPart) {
      const text = narinfos.get(`${cache.name}/${hashPart}`);
      return text ? reply(200, 'text/x-nix-narinfo', text) : reply(404, 'text/plain', 'not found');
    }
    if (/^nar\/[\w.-]+$/.test(file)) {
      const object = await fetch(objectUrl(`${cache.name}/${file}`));
      if (object.status !== 200 || !object.body) return reply(404, 'text/plain', 'not found');
      response.writeHead(200, { 'content-type': 'application/x-nix-nar' });
      await pipeline(Readable.fromWeb(object.body as import('node:stream/web').ReadableStream), response);
      return 200;
    }
    return reply(404, 'text/plain', 'not found');
  }

  const server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://double');
      const segments = url.pathname.split('/').filter(Boolean);
      const body = await readBody(request);
      const call: RecordedCall = {
        method: request.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        body: undefined,
        status: 0,
      };
      try {
        call.body = body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined;
      } catch {
        call.body = body.toString('utf8');
      }
      calls.push(call);
      try {
        if (segments[0] === 'api' && segments[1] === 'v1' && segments[2] === 'cache') {
          const answer = await api(request, url, segments.slice(3), body);
          call.status = answer.status;
          if (answer.json === undefined) response.writeHead(answer.status).end();
          else response.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.json));
        } else if (segments[0] === 'c') {
          call.status = await substituter(request, response, segments.slice(1));
        } else {
          throw new HttpError(404, 'not found');
        }
      } catch (error) {
        call.status = error instanceof HttpError ? error.status : 500;
        if (!response.headersSent) response.writeHead(call.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: (error as Error).message }));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  double = {
    url,
    uriOf: (name) => `${url}/c/${encodeURIComponent(name)}`,
    calls,
    narinfos,
    pins,
    completedPartSizes,
    publicKeysOf,
    presignExpirySeconds: 300,
    openUploads,
    s3,
    partUploadOrigin: s3.endpoint,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await s3.stop();
    },
  };
  return double;
}
