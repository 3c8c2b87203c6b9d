import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uncompressedNarFixture, type NarFixture } from '../helpers/nar-fixture.js';
import { substituteOrThrow } from '../helpers/substitute.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryCache } from '../../src/caches/cache.js';
import { createHttpCache } from '../../src/caches/http.js';
import { UserError } from '../../src/errors.js';
import { findNetrcCredentials, parseNetrc } from '../../src/netrc.js';
import { formatPublicKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';
import { hashPartOf } from '../../src/nix/store-path.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';

const key = generateSigningKey('http-test-1');
const publicKey = formatPublicKey(publicKeyOf(key));
const fastRetry = { baseMs: 20, capMs: 100, budgetMs: 20_000, log: () => {} };
const cleanups: (() => Promise<unknown>)[] = [];

type Fixture = NarFixture;

/** A real built path, its NAR from `nix-store --dump`, and a narinfo signed as push would (compression none). */
async function fixture(tag: string): Promise<Fixture> {
  const storePath = await buildWithNix(`http-${tag}`, `mkdir -p $out; echo ${tag} > $out/name; head -c 1000000 /dev/urandom > $out/blob`);
  const dir = await mkdtemp(join(tmpdir(), 'cachix-http-nar-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return uncompressedNarFixture(storePath, dir, key);
}

/** Nix 2.8 warns this way when substituting; `nix copy` and newer Nix say "lacks a valid signature". */
const NIX_REFUSES_SIGNATURE = /is not signed by any of the keys in 'trusted-public-keys'|lacks a valid signature/;

/** Compared by digest: a deep toEqual over a megabyte of bytes takes seconds. */
function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

let nginx: RunningNginx;
let shared: Fixture;

beforeAll(async () => {
  requireNix();
  nginx = await startNginx();
  cleanups.push(() => nginx.stop());
  shared = await fixture('shared');
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function open(url: string, options: Parameters<typeof createHttpCache>[1] = {}): BinaryCache {
  const cache = createHttpCache(new URL(url), { retry: fastRetry, ...options });
  cleanups.push(async () => cache.close?.());
  return cache;
}

describe('http cache against nginx', () => {
  it('writes nix-cache-info and reads it back', async () => {
    const cache = open(`${nginx.url}/info`);
    await expect(cache.info()).rejects.toThrow(/has no nix-cache-info/);
    await cache.writeCacheInfo!('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
    const info = await cache.info();
    expect(info).toMatchObject({
      storeDir: '/nix/store',
      wantMassQuery: true,
      priority: 30,
      substituterUrl: `${nginx.url}/info`,
      isPublic: true,
    });
  });

  it('uploads a NAR and narinfo that real Nix substitutes, and refuses with a wrong key', async () => {
    const cache = open(`${nginx.url}/main`);
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
    const hashPart = hashPartOf(shared.storePath);
    const absent = '00000000000000000000000000000000';
    expect(await cache.missing([hashPart, absent])).toEqual(new Set([hashPart, absent]));
    await cache.upload(shared.upload, shared.narInfo);
    expect(await cache.missing([hashPart, absent])).toEqual(new Set([absent]));
    expect(sha256(await readFile(join(nginx.root, 'main', shared.upload.narUrl)))).toBe(sha256(shared.nar));
    expect(await cache.getNarInfo(hashPart)).toContain(`StorePath: ${shared.storePath}\n`);
    expect(await cache.getNarInfo(absent)).toBeUndefined();
    expect(await cache.getFile('nar/nothing.nar')).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const chunk of (await cache.getFile(shared.upload.narUrl))!) chunks.push(chunk as Buffer);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(shared.nar));

    await substituteOrThrow(shared.storePath, `${nginx.url}/main`, publicKey);
    const wrongKey = formatPublicKey(publicKeyOf(generateSigningKey('http-test-1')));
    await expect(substituteOrThrow(shared.storePath, `${nginx.url}/main`, wrongKey)).rejects.toThrow(NIX_REFUSES_SIGNATURE);
  });

  it('answers missing() for many paths at once', async () => {
    const cache = open(`${nginx.url}/many`);
    const hashes = Array.from({ length: 100 }, (_, index) => index.toString().padStart(32, '0'));
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
    await writeFile(join(nginx.root, 'many', `${hashes[7]}.narinfo`), 'StorePath: x\n');
    const missing = await cache.missing(hashes);
    expect(missing.size).toBe(99);
    expect(missing.has(hashes[7]!)).toBe(false);
  });
});

describe('http cache credentials', () => {
  it('sends the bearer token, and says what to do when it is refused', async () => {
    const guarded = await startNginx({ bearerToken: 'right-token-123456' });
    cleanups.push(() => guarded.stop());
    const wrong = open(guarded.url, { token: 'wrong-token-123456' });
    const error = await wrong.upload(shared.upload, shared.narInfo).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`the server refused our credentials for ${guarded.url} (HTTP 401)`);
    expect((error as UserError).hint).toMatch(/cachix authtoken.*netrc/);
    expect(`${(error as Error).message} ${(error as UserError).hint} ${wrong.description}`).not.toContain('token-123456');

    await open(guarded.url, { token: 'right-token-123456' }).upload(shared.upload, shared.narInfo);
    expect(sha256(await readFile(join(guarded.root, shared.upload.narUrl)))).toBe(sha256(shared.nar));
  });

  it('uses basic auth from the netrc file for the host', async () => {
    const guarded = await startNginx({ basicAuth: { login: 'alice', password: 'netrc-secret-42' }, protectReads: true });
    cleanups.push(() => guarded.stop());
    const dir = await mkdtemp(join(tmpdir(), 'cachix-netrc-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const netrcFile = join(dir, 'netrc');
    await writeFile(
      netrcFile,
      'machine other.example login bob password nope\nmachine 127.0.0.1\n  login alice\n  password netrc-secret-42\n',
    );
    await open(guarded.url, { netrcFile: join(dir, 'absent') })
      .info()
      .then(
        () => expect.unreachable('reads are protected'),
        (error: unknown) => expect((error as Error).message).toMatch(/refused our credentials/),
      );
    const cache = open(guarded.url, { netrcFile });
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
    expect((await cache.info()).isPublic).toBe(false);
    expect(await cache.missing([hashPartOf(shared.storePath)])).toEqual(new Set([hashPartOf(shared.storePath)]));
    expect(cache.description).not.toContain('netrc-secret-42');
  });

  it('takes user:password from the URL, and never shows it', async () => {
    const guarded = await startNginx({ basicAuth: { login: 'carol', password: 'url-secret-77' } });
    cleanups.push(() => guarded.stop());
    const cache = open(guarded.url.replace('http://', 'http://carol:url-secret-77@'), { netrcFile: '/nonexistent' });
    expect(cache.description).toBe(guarded.url);
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
  });
});

describe('http cache retries through a faulty proxy', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(nginx.url);
    cleanups.push(() => proxy.stop());
  });

  it('retries 503 and then succeeds, logging each retry', async () => {
    const lines: string[] = [];
    proxy.addRule({ method: 'PUT', path: '/r503/nar/', times: 2, action: { kind: 'status', status: 503 } });
    const cache = open(`${proxy.url}/r503`, { retry: { ...fastRetry, log: (line) => lines.push(line) } });
    await cache.upload(shared.upload, shared.narInfo);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^writing to http:\/\/127\.0\.0\.1:\d+\/r503: PUT http:\S+\/r503\/nar\/\w+\.nar answered 503: fault proxy: 503; retry 1 in \d\.\d s$/,
    );
    expect(sha256(await readFile(join(nginx.root, 'r503', shared.upload.narUrl)))).toBe(sha256(shared.nar));
  });

  it('honours Retry-After on 429', async () => {
    proxy.addRule({ method: 'HEAD', path: '/r429/', action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    const cache = open(`${proxy.url}/r429`);
    const started = Date.now();
    expect((await cache.missing(['1'.repeat(32)])).size).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
  });

  it('re-sends a NAR from the start after the connection drops mid-body', async () => {
    proxy.addRule({ method: 'PUT', path: '/rdrop/nar/', action: { kind: 'drop', afterBytes: 300_000 } });
    const cache = open(`${proxy.url}/rdrop`);
    await cache.upload(shared.upload, shared.narInfo);
    const narPuts = proxy.requests.filter((request) => request.method === 'PUT' && request.path.startsWith('/rdrop/nar/'));
    expect(narPuts.map((request) => [request.fault, request.bodyBytes])).toEqual([
      ['drop', 300_000],
      [undefined, shared.nar.length],
    ]);
    expect(sha256(await readFile(join(nginx.root, 'rdrop', shared.upload.narUrl)))).toBe(sha256(shared.nar));
    const narinfoPut = proxy.requests.find(
      (request) => request.method === 'PUT' && request.path.startsWith('/rdrop/') && request.path.endsWith('.narinfo'),
    )!;
    expect([narPuts[1]!.contentType, narPuts[1]!.contentLength]).toEqual(['application/x-nix-nar', String(shared.upload.fileSize)]);
    expect(narinfoPut.contentType).toBe('text/x-nix-narinfo');
  });

  it('retries a response that does not start in time', async () => {
    proxy.addRule({ method: 'GET', path: '/rslow/', action: { kind: 'delay', ms: 1500 } });
    const cache = open(`${proxy.url}/rslow`, { timeouts: { headersMs: 300 } });
    expect(await cache.getNarInfo('2'.repeat(32))).toBeUndefined();
    expect(proxy.requests.filter((request) => request.path.startsWith('/rslow/')).length).toBe(2);
  });

  it('fails fast on 401 and on a server that takes no uploads', async () => {
    proxy.addRule({ method: 'PUT', path: '/r401/', action: { kind: 'status', status: 401 } });
    const started = Date.now();
    await expect(open(`${proxy.url}/r401`).upload(shared.upload, shared.narInfo)).rejects.toThrow(
      `the server refused our credentials for ${proxy.url}/r401`,
    );
    expect(proxy.requests.filter((request) => request.path.startsWith('/r401/'))).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5000); // no retry backoff (the request count above is the real check)

    proxy.addRule({ method: 'PUT', path: '/r405/', action: { kind: 'status', status: 405 } });
    await expect(open(`${proxy.url}/r405`).writeCacheInfo!('StoreDir: /nix/store\n')).rejects.toThrow(
      `the server does not accept uploads at ${proxy.url}/r405`,
    );
  });

  it('never writes a narinfo before its NAR is stored', async () => {
    const paths = await Promise.all(['order-a', 'order-b', 'order-c'].map(fixture));
    proxy.addRule({ method: 'PUT', path: '/rorder/nar/', times: 2, action: { kind: 'status', status: 500 } });
    proxy.addRule({ method: 'PUT', path: '/rorder/nar/', action: { kind: 'drop', afterBytes: 100_000 } });
    const cache = open(`${proxy.url}/rorder`);
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
    await Promise.all(paths.map((path) => cache.upload(path.upload, path.narInfo)));
    for (const path of paths) {
      const stored = proxy.requests.filter((request) => request.status === 201 || request.status === 204);
      const narDone = stored.find((request) => request.path === `/rorder/${path.upload.narUrl}`)!;
      const narinfo = proxy.requests.find((request) => request.path === `/rorder/${hashPartOf(path.storePath)}.narinfo`)!;
      expect([201, 204], `${path.storePath}: its NAR was stored`).toContain(narDone?.status);
      expect(narinfo.startedAt).toBeGreaterThanOrEqual(narDone.completedAt);
      await substituteOrThrow(path.storePath, `${nginx.url}/rorder`, publicKey);
    }
  });
});

describe('netrc', () => {
  it('finds the machine entry as curl does, else the default entry', () => {
    const entries = parseNetrc(`# Nix's netrc
machine cache.example.org login alice password "pass word"
machine OTHER.example.org
  login bob
  password bobs-secret
macdef init
  cd /pub
  get file

default login anonymous password guest@
`);
    expect(findNetrcCredentials(entries, 'cache.example.org')).toEqual({ login: 'alice', password: 'pass word' });
    expect(findNetrcCredentials(entries, 'other.example.org')).toEqual({ login: 'bob', password: 'bobs-secret' });
    expect(findNetrcCredentials(entries, 'elsewhere.org')).toEqual({ login: 'anonymous', password: 'guest@' });
    expect(entries).toHaveLength(3);
    expect(findNetrcCredentials(parseNetrc('machine a login x password y'), 'b')).toBeUndefined();
    expect(findNetrcCredentials(parseNetrc(''), 'b')).toBeUndefined();
  });
});
