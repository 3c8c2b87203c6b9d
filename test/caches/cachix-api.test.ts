import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import type { BinaryCache, NarUpload } from '../../src/caches/cache.js';
import { createCachixApiCache } from '../../src/caches/cachix-api.js';
import { UserError } from '../../src/errors.js';
import { encodeBase32 } from '../../src/nix/base32.js';
import { parseHash } from '../../src/nix/hash.js';
import { narInfoFingerprint, parseNarInfo, type NarInfo } from '../../src/nix/narinfo.js';
import {
  formatPublicKey,
  formatSigningKey,
  generateSigningKey,
  publicKeyOf,
  signFingerprint,
  type SigningKey,
} from '../../src/nix/signing.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import { expectOk, makeCachixEnv } from '../helpers/cachix-env.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { buildWithNix, hashOf, nixDump, run } from '../helpers/nix.js';

const TOKEN = 'cachix-token-0123456789abcdef';
const key = generateSigningKey('demo.cachix.org-1');
const publicKey = formatPublicKey(publicKeyOf(key));
const fastRetry = { baseMs: 5, capMs: 20, budgetMs: 400, log: () => {} };
const cleanups: (() => Promise<unknown>)[] = [];
let double: CachixApiDouble;

interface Fixture {
  storePath: string;
  hashPart: string;
  compressed: Buffer;
  upload: NarUpload;
  narInfo: NarInfo;
}

/** A real built path; its NAR from `nix-store --dump`, zstd-compressed and spooled; a narinfo signed as push signs. */
async function fixture(tag: string, blobBytes: number, options: { signingKey?: SigningKey; dep?: string } = {}): Promise<Fixture> {
  const refer = options.dep ? 'echo $dep0 > $out/dep' : ':';
  const storePath = await buildWithNix(
    `cachix-api-${tag}`,
    `mkdir -p $out; echo ${tag} > $out/name; ${refer}; head -c ${blobBytes} /dev/urandom > $out/blob`,
    {
      deps: options.dep ? [options.dep] : [],
    },
  );
  const compressed = compress(await nixDump(storePath));
  const dir = await mkdtemp(join(tmpdir(), 'cachix-api-nar-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const localPath = join(dir, 'nar.zst');
  await writeFile(localPath, compressed);
  const fileHash = { algorithm: 'sha256' as const, digest: Uint8Array.from(createHash('sha256').update(compressed).digest()) };
  const fileHashBase32 = encodeBase32(fileHash.digest);
  const narHash = parseHash((await run('nix-store', ['-q', '--hash', storePath])).trim());
  const narSize = Number((await run('nix-store', ['-q', '--size', storePath])).trim());
  const references = (await run('nix-store', ['-q', '--references', storePath])).split('\n').filter(Boolean);
  const deriver = (await run('nix-store', ['-q', '--deriver', storePath])).trim();
  const upload: NarUpload = {
    narUrl: `nar/${fileHashBase32}.nar.zst`,
    fileSize: compressed.length,
    fileHashBase32,
    compression: 'zstd',
    localPath,
    open: () => createReadStream(localPath, { highWaterMark: 64 * 1024 }),
  };
  const unsigned = {
    storePath,
    url: upload.narUrl,
    compression: 'zstd',
    fileHash,
    fileSize: compressed.length,
    narHash,
    narSize,
    references,
    deriver,
    sigs: [],
  };
  const narInfo = { ...unsigned, sigs: [signFingerprint(options.signingKey ?? key, narInfoFingerprint(unsigned))] };
  return { storePath, hashPart: storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32), compressed, upload, narInfo };
}

function open(options: { name?: string; token?: string | undefined; partSize?: number; maxParts?: number } = {}): BinaryCache {
  const cache = createCachixApiCache({
    name: options.name ?? 'demo',
    host: double.url,
    token: 'token' in options ? options.token : TOKEN,
    partSize: options.partSize,
    maxParts: options.maxParts,
    retry: fastRetry,
    wholeRetry: { delayMs: 10, log: () => {} },
  });
  cleanups.push(() => cache.close?.() ?? Promise.resolve());
  return cache;
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Real Nix substitutes the path from the cache's uri into a fresh chroot store, checking `trustedKey`. */
async function substitute(storePath: string, cacheUrl: string, trustedKey: string): Promise<string> {
  const store = await mkdtemp(join(tmpdir(), 'cachix-api-fresh-'));
  try {
    await run('nix-store', [
      '--store',
      store,
      '--realise',
      storePath,
      '--option',
      'substituters',
      cacheUrl,
      '--option',
      'trusted-public-keys',
      trustedKey,
    ]);
    return await readFile(join(store, storePath, 'name'), 'utf8');
  } finally {
    await rm(store, { recursive: true, force: true });
  }
}

const callsTo = (suffix: RegExp) => double.calls.filter((call) => suffix.test(call.path));
const presignCalls = () => double.calls.filter((call) => /\/multipart-nar\/[^/]+$/.test(call.path) && call.status === 200);
const MIB = 1024 * 1024;
let big: Fixture;

beforeAll(async () => {
  double = await startCachixApiDouble({
    token: TOKEN,
    caches: [
      { name: 'demo', publicSigningKeys: [publicKey], isPublic: true },
      { name: 'secret', publicSigningKeys: [publicKey], isPublic: false },
      { name: 'demo2', publicSigningKeys: [publicKey], isPublic: true },
      { name: 'expiry', publicSigningKeys: [publicKey], isPublic: true },
    ],
  });
  big = await fixture('big', 12 * MIB);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await double?.stop();
});

describe('cachix API cache', () => {
  it('describes the cache from GET /api/v1/cache/:name', async () => {
    const info = await open().info();
    expect(info).toMatchObject({
      publicKeys: [publicKey],
      substituterUrl: double.uriOf('demo'),
      isPublic: true,
      preferredCompression: 'zstd',
      storeDir: '/nix/store',
      priority: 41,
    });
    expect(double.calls.find((call) => call.path === '/api/v1/cache/demo')?.method).toBe('GET');
  });

  it('asks POST /narinfo in batches of 1000 hashes and returns what the server lacks', async () => {
    const hashes = Array.from({ length: 2500 }, (_, index) => encodeBase32(createHash('sha256').update(`h${index}`).digest()).slice(0, 32));
    const before = callsTo(/\/demo\/narinfo$/).length;
    const missing = await open().missing([...hashes, hashes[0]!]);
    const batches = callsTo(/\/demo\/narinfo$/).slice(before);
    expect(batches.map((call) => (call.body as string[]).length)).toEqual([1000, 1000, 500]);
    expect(missing).toEqual(new Set(hashes));
  });

  it('uploads a real NAR that Nix then substitutes from the cache uri, signed with our key', async () => {
    const path = await fixture('one', 300_000);
    const cache = open();
    expect(await cache.missing([path.hashPart])).toEqual(new Set([path.hashPart]));
    await cache.upload(path.upload, path.narInfo);

    expect(await cache.missing([path.hashPart])).toEqual(new Set());
    const complete = callsTo(/\/multipart-nar\/[^/]+\/complete$/).at(-1)!;
    const create = (complete.body as { narInfoCreate: Record<string, unknown> }).narInfoCreate;
    expect(create).toMatchObject({
      cStoreHash: path.hashPart,
      cStoreSuffix: 'cachix-api-one',
      cNarHash: (await run('nix-store', ['-q', '--hash', path.storePath])).trim(),
      cFileHash: createHash('sha256').update(path.compressed).digest('hex'),
      cFileSize: path.compressed.length,
      cReferences: [],
      cDeriver: path.narInfo.deriver!.slice('/nix/store/'.length),
      cSig: path.narInfo.sigs[0]!.slice('demo.cachix.org-1:'.length),
    });
    expect(callsTo(/\/demo\/multipart-nar$/).at(-1)!.query).toEqual({ compression: 'zst' });

    const narInfo = parseNarInfo((await cache.getNarInfo(path.hashPart))!);
    expect(narInfo.sigs).toEqual(path.narInfo.sigs);
    expect(Buffer.from(narInfo.fileHash!.digest)).toEqual(Buffer.from(path.narInfo.fileHash!.digest));
    expect(await readAll((await cache.getFile(narInfo.url))!)).toEqual(path.compressed);
    expect(await substitute(path.storePath, double.uriOf('demo'), publicKey)).toBe('one\n');
  });

  it('sends a 12 MiB NAR in parts of at least 5 MiB but the last, each PUT to its presigned URL with Content-MD5', async () => {
    const dep = await fixture('dep', 1000);
    await open().upload(dep.upload, dep.narInfo);
    const path = await fixture('parts', 12 * MIB, { dep: dep.storePath });
    const partSize = 5 * MIB;
    expect(Math.ceil(path.compressed.length / partSize)).toBe(3);
    const presignsBefore = presignCalls().length;
    await open({ partSize }).upload(path.upload, path.narInfo);

    const presigns = presignCalls().slice(presignsBefore);
    expect(presigns.map((call) => Number(call.query.partNumber)).sort()).toEqual([1, 2, 3]);
    const complete = callsTo(/\/complete$/).at(-1)!;
    // Servant's NoContent for POST: 200 with an empty body.
    expect(complete.status).toBe(200);
    expect((complete.body as { narInfoCreate: { cReferences: string[] } }).narInfoCreate.cReferences).toEqual([
      dep.storePath.slice('/nix/store/'.length),
    ]);
    expect((complete.body as { parts: { partNumber: number }[] }).parts.map((part) => part.partNumber)).toEqual([1, 2, 3]);
    const parts = double.completedPartSizes.get(complete.path.split('/')[6]!)!;
    expect(parts.slice(0, -1).every((size) => size === partSize)).toBe(true);
    expect(parts.reduce((sum, size) => sum + size, 0)).toBe(path.compressed.length);
    const narInfo = parseNarInfo((await open().getNarInfo(path.hashPart))!);
    // Digests, not bytes: a failing toEqual on 12 MiB buffers builds a diff of millions of elements.
    const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    expect(sha256(await readAll((await open().getFile(narInfo.url))!))).toBe(sha256(path.compressed));
    expect(await substitute(path.storePath, double.uriOf('demo'), publicKey)).toBe('parts\n');
  });

  it('a NAR that would need more parts than allowed goes up in bigger parts (part count forced down to 2)', async () => {
    const path = await fixture('bigparts', 12 * MIB);
    const partSize = 5 * MIB;
    expect(Math.ceil(path.compressed.length / partSize)).toBe(3);
    await open({ partSize, maxParts: 2 }).upload(path.upload, path.narInfo);
    const complete = callsTo(/\/complete$/).at(-1)!;
    const parts = double.completedPartSizes.get(complete.path.split('/')[6]!)!;
    expect(parts).toHaveLength(2);
    // The smallest whole MiB that fits the NAR in two parts.
    expect(parts[0]).toBe(Math.ceil(path.compressed.length / 2 / MIB) * MIB);
    expect(parts.reduce((sum, size) => sum + size, 0)).toBe(path.compressed.length);
    expect(await substitute(path.storePath, double.uriOf('demo'), publicKey)).toBe('bigparts\n');
  });

  it('the double refuses, as S3 does, a part under 5 MiB that is not the last (EntityTooSmall); the path is tried whole 3 more times', async () => {
    const error = await open({ name: 'demo2', partSize: 1 * MIB })
      .upload(big.upload, big.narInfo)
      .catch((caught: unknown) => caught);
    expect(String(error)).toMatch(/answered 400: .*EntityTooSmall: part 1 has 1048576 bytes/);
    // cachix's retryAll: the whole upload again, 3 more times, each aborted when refused.
    expect(callsTo(/\/demo2\/multipart-nar\/[^/]+\/abort$/).map((call) => call.status)).toEqual([200, 200, 200, 200]);
    expect(await open({ name: 'demo2' }).missing([big.hashPart])).toEqual(new Set([big.hashPart]));
  });

  it('asks for a new presigned URL when a part waited past its expiry, and the push completes', async () => {
    const proxy = await startFaultProxy(double.s3.endpoint);
    cleanups.push(() => proxy.stop());
    // Part 2's first PUT is held for 3.5 s: its URL, valid for 2 s (X-Amz-Date counts whole
    // seconds, so at least 1 s), has expired when it reaches the store.
    proxy.addRule({ method: 'PUT', path: /partNumber=2&/, times: 1, action: { kind: 'delay', ms: 3500 } });
    double.partUploadOrigin = proxy.url;
    double.presignExpirySeconds = 2;
    const presignsBefore = presignCalls().length;
    try {
      await open({ name: 'expiry', partSize: 5 * MIB }).upload(big.upload, big.narInfo);
    } finally {
      double.partUploadOrigin = double.s3.endpoint;
      double.presignExpirySeconds = 300;
    }
    const expired = proxy.requests.filter((request) => request.method === 'PUT' && request.status === 403);
    expect(expired.some((request) => /partNumber=2&/.test(request.path))).toBe(true);
    const presigned = presignCalls()
      .slice(presignsBefore)
      .map((call) => Number(call.query.partNumber));
    expect(presigned.filter((number) => number === 2).length).toBeGreaterThanOrEqual(2);
    // The part got a fresh URL within the same upload: not a whole new upload.
    expect(callsTo(/\/expiry\/multipart-nar$/).length).toBe(1);
    expect(await substitute(big.storePath, double.uriOf('expiry'), publicKey)).toBe('big\n');
  });

  it('aborts the multipart upload when a part cannot be stored, and publishes nothing', async () => {
    const proxy = await startFaultProxy(double.s3.endpoint);
    cleanups.push(() => proxy.stop());
    proxy.addRule({
      method: 'PUT',
      path: /partNumber=2&/,
      times: 1000,
      action: { kind: 'status', status: 500, body: '<Error><Code>InternalError</Code></Error>' },
    });
    double.partUploadOrigin = proxy.url;
    const abortsBefore = callsTo(/\/abort$/).length;
    try {
      await expect(open({ name: 'demo2', partSize: 5 * MIB }).upload(big.upload, big.narInfo)).rejects.toThrow(/PUT .* failed \d+ times/);
    } finally {
      double.partUploadOrigin = double.s3.endpoint;
    }
    const aborts = callsTo(/\/abort$/).slice(abortsBefore);
    expect(aborts.map((call) => call.status)).toEqual([200]);
    const narId = aborts[0]!.path.split('/')[6]!;
    expect(proxy.requests.filter((request) => request.method === 'PUT' && request.status === 500).length).toBeGreaterThan(1);
    expect(callsTo(/\/complete$/).some((call) => call.path.includes(narId))).toBe(false);
    expect(double.openUploads.size).toBe(0);
    expect(await open({ name: 'demo2' }).missing([big.hashPart])).toEqual(new Set([big.hashPart]));
  });

  it('fails fast on a refused token, without the token in the message', async () => {
    const wrong = 'wrong-token-fedcba9876543210';
    const before = double.calls.length;
    const error = await open({ token: wrong })
      .info()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe('cachix API refused the token for cache demo (HTTP 401)');
    expect((error as UserError).hint).toMatch(/cachix authtoken <token>.*CACHIX_AUTH_TOKEN/);
    expect(`${(error as UserError).message} ${(error as UserError).hint}`).not.toContain(wrong);
    expect(double.calls.length - before).toBe(1); // no retries
  });

  it('needs a token for a private cache and names a cache that does not exist', async () => {
    await expect(open({ name: 'secret', token: undefined }).info()).rejects.toThrow('cachix API needs a token for cache secret (HTTP 401)');
    expect((await open({ name: 'secret' }).info()).isPublic).toBe(false);
    await expect(open({ name: 'nope' }).info()).rejects.toThrow(`no cache nope on ${double.url}`);
  });

  it('refuses, before sending any byte, a NAR the server cannot take or a key the cache does not publish', async () => {
    const path = await fixture('refused', 1000, { signingKey: generateSigningKey('someone-else-1') });
    const before = callsTo(/multipart-nar$/).length;
    await expect(open().upload(path.upload, path.narInfo)).rejects.toThrow(
      /signed with someone-else-1, but cache demo publishes only demo.cachix.org-1/,
    );
    await expect(open().upload({ ...path.upload, compression: 'none' }, path.narInfo)).rejects.toThrow(/zstd or xz, not none/);
    expect(callsTo(/multipart-nar$/).length).toBe(before);
  });
});

describe('cachix push to the cachix API', () => {
  it('pushes a closure that Nix substitutes, without printing the token', async () => {
    const dep = await buildWithNix('cachix-api-cli-dep', 'mkdir -p $out; echo dep > $out/name');
    const top = await buildWithNix('cachix-api-cli-top', 'mkdir -p $out; echo top > $out/name; echo $dep0 > $out/dep', { deps: [dep] });
    const world = await makeCachixEnv();
    cleanups.push(() => world.cleanup());
    const env = { CACHIX_AUTH_TOKEN: TOKEN, CACHIX_SIGNING_KEY: formatSigningKey(key) };
    const result = expectOk(await world.run(['--host', double.url, 'push', 'demo', top], { env }), 'cachix push demo');
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    expect(double.narinfos.has(`demo/${hashOf(dep)}`) && double.narinfos.has(`demo/${hashOf(top)}`)).toBe(true);
    expect(await substitute(top, double.uriOf('demo'), publicKey)).toBe('top\n');
  });
});

describe('cachix API double', () => {
  it('answers malformed JSON with 400 and a message, and requests without the token with 401', async () => {
    const url = `${double.url}/api/v1/cache/demo/narinfo`;
    const malformed = await fetch(url, { method: 'POST', body: '["abc', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: string }).error).toMatch(/malformed JSON/);
    expect((await fetch(`${double.url}/api/v1/cache/demo/multipart-nar?compression=zst`, { method: 'POST' })).status).toBe(401);
    const badCompression = await fetch(`${double.url}/api/v1/cache/demo/multipart-nar?compression=zstd`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(badCompression.status).toBe(400);
  });
});
