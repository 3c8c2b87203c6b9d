// A stand-in for an attic server (no attic server can be installed here), written from its sources.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompressStream } from 'zstd-napi';
import { decodeBase32 } from '../../src/nix/base32.js';
import { narInfoFingerprint } from '../../src/nix/narinfo.js';
import { formatPublicKey, generateSigningKey, publicKeyOf, signFingerprint, type SigningKey } from '../../src/nix/signing.js';
import { listenOnLoopback } from './loopback.js';

/*
 * Follows zhaofengli/attic: routes from server/src/api/v1/mod.rs and server/src/api/binary_cache.rs;
 * auth as server/src/access/http.rs and token/src/util.rs (a `bearer` token, or the password of
 * Basic auth; a token the server cannot verify is ignored, so the request is anonymous); permissions
 * as AuthState::auth_cache (a public cache grants pull; without any permission on a cache, "no such
 * cache" and "forbidden" both become 401 Unauthorized, server/src/error.rs); errors as
 * `{code, error, message}`. upload-path as server/src/api/v1/upload_path.rs: the metadata from
 * X-Attic-Nar-Info-Preamble-Size (at most max-nar-info-size, 1 MiB, read exactly) or
 * X-Attic-Nar-Info; push permission; a NAR hash the server holds is deduplicated after reading
 * the whole body and checking its hash and size (require-proof-of-possession, on by default); a
 * new NAR is read up to nar_size, hashed, compressed with zstd (the default) and refused with
 * "Bad NAR Hash or Size" when either differs. Narinfos as Object::to_nar_info: URL
 * nar/<store hash>.nar, no FileHash/FileSize, NarHash as typed base16, signed with the cache's
 * own key (the client's signatures are stored, not served). Simplified: one chunk per NAR
 * (attic chunks NARs above 128 KiB, which changes nothing a client sees), tokens grant every
 * cache rather than patterns.
 */

export interface AtticDoubleCacheSpec {
  name: string;
  isPublic: boolean;
  priority?: number;
  upstreamCacheKeyNames?: string[];
}

export interface AtticPermissions {
  pull?: boolean;
  push?: boolean;
  createCache?: boolean;
}

export interface RecordedUpload {
  cache: string;
  storePathHash: string;
  form: 'header' | 'preamble';
  preambleSize?: number;
  status: number;
  kind?: 'Uploaded' | 'Deduplicated';
  error?: string;
}

export interface AtticDouble {
  /** The API endpoint, ending in `/`. */
  endpoint: string;
  cacheUrl(name: string): string;
  substituterUrl(name: string): string;
  publicKey(name: string): string;
  calls: Array<{ method: string; path: string; status: number }>;
  uploads: RecordedUpload[];
  /**
   * The next dropUploads upload bodies are cut (socket destroyed) after dropAfterBytes. Uploads
   * after the first stallAfterUploads (counted from the start) are read and never answered.
   */
  faults: { dropUploads: number; dropAfterBytes: number; stallAfterUploads?: number };
  stop(): Promise<void>;
}

interface CacheState {
  spec: AtticDoubleCacheSpec;
  key: SigningKey;
  storeDir: string;
  objects: Map<string, StoredObject>;
}

interface StoredObject {
  storePath: string;
  references: string[];
  deriver: string | null;
  sigs: string[];
  ca: string | null;
  narHashHex: string;
}

interface StoredNar {
  narSize: number;
  /** The zstd file; undefined when the double was told not to keep NAR bytes. */
  file: string | undefined;
}

class AtticError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9\-_+]{0,49}$/;
const STORE_PATH_HASH = /^[0123456789abcdfghijklmnpqrsvwxyz]{32}$/;
const MAX_NAR_INFO_SIZE = 1024 * 1024;
const NOT_FOUND = () => new AtticError(404, 'NotFound', 'The URL you requested was not found.');
const UNAUTHORIZED = () => new AtticError(401, 'Unauthorized', 'Unauthorized.');
const NO_SUCH_CACHE = () => new AtticError(404, 'NoSuchCache', 'The requested cache does not exist.');
const request = (message: string) => new AtticError(400, 'RequestError', `General request error: ${message}`);

/** token/src/util.rs parse_authorization_header: bearer token, or the password part of Basic. */
function tokenOf(header: string | undefined): string | undefined {
  const match = /^(bearer|basic) (.*)$/i.exec(header ?? '');
  if (!match) return undefined;
  if (match[1]!.toLowerCase() === 'bearer') return match[2];
  const userPass = Buffer.from(match[2]!, 'base64').toString('utf8');
  const colon = userPass.indexOf(':');
  return colon < 0 ? undefined : userPass.slice(colon + 1);
}

/** attic/src/hash: `sha256:` then 64 hex or 52 Nix base32 characters. */
function parseTypedHash(text: unknown): string {
  if (typeof text !== 'string' || !text.startsWith('sha256:')) throw request('nar_hash: expected sha256:<hash>');
  const value = text.slice('sha256:'.length);
  if (/^[0-9a-f]{64}$/i.test(value)) return value.toLowerCase();
  if (value.length === 52) return Buffer.from(decodeBase32(value, 32)).toString('hex');
  throw request(`nar_hash: invalid length ${value.length}`);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readAll(stream: AsyncIterable<Buffer>, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > limit) throw request('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads the body as attic's StreamReader does: first `size` bytes on demand, then the rest as a stream. */
class BodyReader {
  private pending: Buffer[] = [];
  private readonly iterator: AsyncIterator<Buffer>;

  constructor(stream: IncomingMessage) {
    this.iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async readExactly(size: number): Promise<Buffer> {
    let have = this.pending.reduce((total, chunk) => total + chunk.length, 0);
    while (have < size) {
      const next = await this.iterator.next();
      if (next.done) break;
      this.pending.push(next.value);
      have += next.value.length;
    }
    const all = Buffer.concat(this.pending);
    this.pending = all.length > size ? [all.subarray(size)] : [];
    return all.subarray(0, Math.min(size, all.length));
  }

  /** The rest of the body, at most `limit` bytes (tokio's `take`). */
  async *rest(limit = Infinity): AsyncGenerator<Buffer> {
    let left = limit;
    const pending = this.pending;
    this.pending = [];
    for (const chunk of pending) {
      if (left <= 0) return;
      const piece = chunk.subarray(0, left);
      left -= piece.length;
      yield piece;
    }
    while (left > 0) {
      const next = await this.iterator.next();
      if (next.done) return;
      const piece = next.value.subarray(0, left);
      left -= piece.length;
      yield piece;
    }
  }
}

export async function startAtticDouble(options: {
  caches: AtticDoubleCacheSpec[];
  tokens: Record<string, AtticPermissions>;
  /** Keep the compressed NARs (to serve them); off for very large NARs that are only checked. */
  keepNars?: boolean;
}): Promise<AtticDouble> {
  const dir = await mkdtemp(join(tmpdir(), 'attic-double-'));
  const keepNars = options.keepNars ?? true;
  const caches = new Map<string, CacheState>();
  const nars = new Map<string, StoredNar>();
  const calls: AtticDouble['calls'] = [];
  const uploads: RecordedUpload[] = [];
  const faults: AtticDouble['faults'] = { dropUploads: 0, dropAfterBytes: 0 };
  let uploadsStarted = 0;
  let fileCounter = 0;
  let endpoint = '';

  const addCache = (spec: AtticDoubleCacheSpec, storeDir = '/nix/store'): void => {
    // NixKeypair::generate(cache_name): the key is named after the cache.
    caches.set(spec.name, { spec, key: generateSigningKey(spec.name), storeDir, objects: new Map() });
  };
  for (const spec of options.caches) addCache(spec);

  /** AuthState::auth_cache: the cache, or the error a client with these permissions may see. */
  const authCache = (token: string | undefined, name: string, need: keyof AtticPermissions): CacheState => {
    if (!CACHE_NAME.test(name)) throw request('invalid cache name');
    const granted: AtticPermissions = { ...(token !== undefined ? options.tokens[token] : undefined) };
    const cache = caches.get(name);
    if (cache?.spec.isPublic) granted.pull = true;
    const canDiscover = Boolean(granted.pull || granted.push || granted.createCache);
    if (!cache) throw canDiscover ? NO_SUCH_CACHE() : UNAUTHORIZED();
    if (!granted[need]) {
      throw canDiscover ? new AtticError(403, 'AccessError', `Access error: No ${need} permission`) : UNAUTHORIZED();
    }
    return cache;
  };

  const narInfoText = (cache: CacheState, hash: string, object: StoredObject, nar: StoredNar): string => {
    const fingerprint = narInfoFingerprint({
      storePath: object.storePath,
      narHash: { algorithm: 'sha256', digest: Buffer.from(object.narHashHex, 'hex') },
      narSize: nar.narSize,
      references: object.references.map((reference) => `${cache.storeDir}/${reference}`),
    });
    const lines = [
      `StorePath: ${object.storePath}`,
      `URL: nar/${hash}.nar`,
      'Compression: zstd',
      `NarHash: sha256:${object.narHashHex}`,
      `NarSize: ${nar.narSize}`,
      `References: ${object.references.join(' ')}`,
    ];
    if (object.deriver) lines.push(`Deriver: ${object.deriver}`);
    lines.push(`Sig: ${signFingerprint(cache.key, fingerprint)}`);
    if (object.ca) lines.push(`CA: ${object.ca}`);
    return lines.join('\n') + '\n';
  };

  async function uploadPath(httpRequest: IncomingMessage, token: string | undefined, record: RecordedUpload): Promise<unknown> {
    const body = new BodyReader(httpRequest);
    const preambleHeader = httpRequest.headers['x-attic-nar-info-preamble-size'];
    const infoHeader = httpRequest.headers['x-attic-nar-info'];
    let infoBytes: Buffer;
    if (typeof preambleHeader === 'string') {
      record.form = 'preamble';
      if (!/^\d+$/.test(preambleHeader)) throw request('X-Attic-Nar-Info-Preamble-Size must be a valid unsigned integer');
      const size = Number(preambleHeader);
      record.preambleSize = size;
      if (size > MAX_NAR_INFO_SIZE) throw request('Upload info is too large');
      infoBytes = await body.readExactly(size);
      if (infoBytes.length !== size) throw request("Upload info doesn't match specified size");
    } else if (typeof infoHeader === 'string') {
      infoBytes = Buffer.from(infoHeader, 'latin1');
    } else {
      throw request('X-Attic-Nar-Info must be set');
    }
    let info: Record<string, unknown>;
    try {
      info = JSON.parse(infoBytes.toString('utf8')) as Record<string, unknown>;
    } catch (error) {
      throw request((error as Error).message);
    }
    const requireString = (name: string, nullable = false): string | null => {
      const value = info[name];
      if (typeof value === 'string' || (nullable && (value === null || value === undefined))) return (value as string) ?? null;
      throw request(`${name}: invalid type`);
    };
    const cacheName = requireString('cache')!;
    const storePathHash = requireString('store_path_hash')!;
    if (!STORE_PATH_HASH.test(storePathHash)) throw request('invalid store path hash');
    record.cache = cacheName;
    record.storePathHash = storePathHash;
    const storePath = requireString('store_path')!;
    const references = info.references;
    const sigs = info.sigs;
    if (!Array.isArray(references) || references.some((item) => typeof item !== 'string')) throw request('references: invalid type');
    if (!Array.isArray(sigs) || sigs.some((item) => typeof item !== 'string')) throw request('sigs: invalid type');
    requireString('system', true);
    const deriver = requireString('deriver', true);
    const ca = requireString('ca', true);
    const narHashHex = parseTypedHash(info.nar_hash);
    const narSize = info.nar_size;
    if (!Number.isSafeInteger(narSize) || (narSize as number) < 0) throw request('nar_size: invalid type');
    const cache = authCache(token, cacheName, 'push');
    const object: StoredObject = { storePath, references: references as string[], deriver, sigs: sigs as string[], ca, narHashHex };

    const existing = nars.get(narHashHex);
    if (existing) {
      // require-proof-of-possession: the whole body is read and must match the NAR held.
      const hasher = createHash('sha256');
      let size = 0;
      for await (const chunk of body.rest()) {
        hasher.update(chunk);
        size += chunk.length;
      }
      if (hasher.digest('hex') !== narHashHex || size !== narSize || size !== existing.narSize) throw request('Bad NAR Hash or Size');
      cache.objects.set(storePathHash, object);
      record.kind = 'Deduplicated';
      return { kind: 'Deduplicated', frac_deduplicated: null };
    }

    const hasher = createHash('sha256');
    let size = 0;
    let compressedSize = 0;
    const file = keepNars ? join(dir, `nar-${++fileCounter}.zst`) : undefined;
    const counting = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const chunk of source) {
        hasher.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    };
    const sink = file
      ? createWriteStream(file)
      : new Writable({
          write(_chunk, _encoding, done) {
            done();
          },
        });
    const measure = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const chunk of source) {
        compressedSize += chunk.length;
        yield chunk;
      }
    };
    await pipeline(counting(body.rest(narSize as number)), new CompressStream({ compressionLevel: 3 }), measure, sink);
    if (hasher.digest('hex') !== narHashHex || size !== narSize) {
      if (file) await unlink(file).catch(() => undefined);
      throw request('Bad NAR Hash or Size');
    }
    nars.set(narHashHex, { narSize, file });
    cache.objects.set(storePathHash, object);
    record.kind = 'Uploaded';
    return { kind: 'Uploaded', file_size: compressedSize, frac_deduplicated: 0 };
  }

  async function handle(httpRequest: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(httpRequest.url ?? '/', 'http://double');
    const method = httpRequest.method ?? 'GET';
    const token = tokenOf(httpRequest.headers.authorization);
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (parts[0] === '_api' && parts[1] === 'v1') {
      const route = `${method} ${parts[2]}`;
      if (route === 'PUT upload-path' && parts.length === 3) {
        const record: RecordedUpload = { cache: '', storePathHash: '', form: 'header', status: 0 };
        uploads.push(record);
        uploadsStarted++;
        if (faults.stallAfterUploads !== undefined && uploadsStarted > faults.stallAfterUploads) {
          record.error = 'stalled';
          httpRequest.resume();
          return;
        }
        if (faults.dropUploads > 0) {
          faults.dropUploads--;
          let received = 0;
          httpRequest.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received >= faults.dropAfterBytes) httpRequest.socket.destroy();
          });
          record.error = 'dropped';
          const header = httpRequest.headers['x-attic-nar-info'];
          if (typeof header === 'string')
            record.storePathHash = String((JSON.parse(header) as { store_path_hash?: unknown }).store_path_hash);
          return;
        }
        try {
          const answer = await uploadPath(httpRequest, token, record);
          record.status = 200;
          return sendJson(response, 200, answer);
        } catch (error) {
          record.status = error instanceof AtticError ? error.status : 500;
          record.error = (error as Error).message;
          throw error;
        }
      }
      if (route === 'POST get-missing-paths' && parts.length === 3) {
        const payload = JSON.parse((await readAll(httpRequest)).toString('utf8')) as { cache?: unknown; store_path_hashes?: unknown };
        if (typeof payload.cache !== 'string' || !Array.isArray(payload.store_path_hashes)) throw request('invalid payload');
        if (payload.store_path_hashes.some((hash) => typeof hash !== 'string' || !STORE_PATH_HASH.test(hash))) {
          throw request('invalid store path hash');
        }
        const cache = authCache(token, payload.cache, 'push');
        const requested = new Set(payload.store_path_hashes as string[]);
        return sendJson(response, 200, { missing_paths: [...requested].filter((hash) => !cache.objects.has(hash)) });
      }
      if (parts[2] === 'cache-config' && parts.length === 4) {
        const name = parts[3]!;
        if (method === 'GET') {
          const cache = authCache(token, name, 'pull');
          return sendJson(response, 200, {
            substituter_endpoint: `${endpoint}${name}`,
            api_endpoint: endpoint,
            public_key: formatPublicKey(publicKeyOf(cache.key)),
            is_public: cache.spec.isPublic,
            store_dir: cache.storeDir,
            priority: cache.spec.priority ?? 41,
            upstream_cache_key_names: cache.spec.upstreamCacheKeyNames ?? [],
            retention_period: 'Global',
          });
        }
        if (method === 'POST') {
          // create_cache checks the permission from the token alone, before the cache is looked up.
          if (!(token !== undefined && options.tokens[token]?.createCache)) throw UNAUTHORIZED();
          const payload = JSON.parse((await readAll(httpRequest)).toString('utf8')) as Record<string, unknown>;
          if (payload.keypair !== 'Generate' || typeof payload.is_public !== 'boolean' || typeof payload.store_dir !== 'string') {
            throw request('invalid payload');
          }
          if (!Number.isInteger(payload.priority) || !Array.isArray(payload.upstream_cache_key_names)) throw request('invalid payload');
          if (caches.has(name)) throw new AtticError(400, 'CacheAlreadyExists', 'The cache already exists.');
          addCache(
            {
              name,
              isPublic: payload.is_public,
              priority: payload.priority as number,
              upstreamCacheKeyNames: payload.upstream_cache_key_names as string[],
            },
            payload.store_dir,
          );
          response.writeHead(200, { 'content-length': 0 });
          return void response.end();
        }
      }
      throw NOT_FOUND();
    }
    if (method !== 'GET' && method !== 'HEAD') throw NOT_FOUND();
    // The binary cache routes: /{cache}/nix-cache-info, /{cache}/{hash}.narinfo, /{cache}/nar/{hash}.nar
    const name = parts[0] ?? '';
    if (parts.length === 2 && parts[1] === 'nix-cache-info') {
      const cache = authCache(token, name, 'pull');
      const text = `WantMassQuery: 1\nStoreDir: ${cache.storeDir}\nPriority: ${cache.spec.priority ?? 41}\n`;
      response.writeHead(200, { 'content-type': 'text/x-nix-cache-info', 'content-length': Buffer.byteLength(text) });
      return void response.end(method === 'HEAD' ? undefined : text);
    }
    if (parts.length === 2 && parts[1]!.endsWith('.narinfo')) {
      const hash = parts[1]!.slice(0, -'.narinfo'.length);
      if (!STORE_PATH_HASH.test(hash)) throw request('invalid store path hash');
      const cache = authCache(token, name, 'pull');
      const object = cache.objects.get(hash);
      if (!object) throw new AtticError(404, 'NoSuchObject', 'The requested object does not exist.');
      const text = narInfoText(cache, hash, object, nars.get(object.narHashHex)!);
      response.writeHead(200, { 'content-type': 'text/x-nix-narinfo', 'content-length': Buffer.byteLength(text) });
      return void response.end(method === 'HEAD' ? undefined : text);
    }
    if (parts.length === 3 && parts[1] === 'nar' && parts[2]!.endsWith('.nar')) {
      const hash = parts[2]!.slice(0, -'.nar'.length);
      const cache = authCache(token, name, 'pull');
      const object = cache.objects.get(hash);
      const nar = object && nars.get(object.narHashHex);
      if (!nar?.file) throw new AtticError(404, 'NoSuchObject', 'The requested object does not exist.');
      const size = (await stat(nar.file)).size;
      response.writeHead(200, { 'content-type': 'application/x-nix-nar', 'content-length': size });
      if (method === 'HEAD') return void response.end();
      await pipeline(createReadStream(nar.file), response);
      return;
    }
    throw NOT_FOUND();
  }

  const server = createServer((httpRequest, response) => {
    handle(httpRequest, response)
      .catch((error: unknown) => {
        if (response.headersSent) return void response.destroy();
        const known = error instanceof AtticError ? error : new AtticError(500, 'InternalServerError', String(error));
        sendJson(response, known.status, { code: known.status, error: known.kind, message: known.message });
        // Like a server that answers before reading a refused body: the rest is not waited for.
        httpRequest.resume();
      })
      .finally(() => calls.push({ method: httpRequest.method ?? '', path: httpRequest.url ?? '', status: response.statusCode }));
  });
  const listening = await listenOnLoopback(server);
  endpoint = `http://127.0.0.1:${listening.port}/`;
  return {
    endpoint,
    cacheUrl: (name) => `attic+${endpoint}${name}`,
    substituterUrl: (name) => `${endpoint}${name}`,
    publicKey: (name) => formatPublicKey(publicKeyOf(caches.get(name)!.key)),
    calls,
    uploads,
    faults,
    async stop() {
      await listening.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
