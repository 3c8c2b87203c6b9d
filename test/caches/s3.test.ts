import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { once } from 'node:events';
import { uncompressedNarFixture, type NarFixture } from '../helpers/nar-fixture.js';
import { substituteOrThrow } from '../helpers/substitute.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryCache, NarUpload } from '../../src/caches/cache.js';
import { createS3Cache } from '../../src/caches/s3.js';
import { parseS3Url } from '../../src/caches/s3-location.js';
import { UserError } from '../../src/errors.js';
import { encodeBase32 } from '../../src/nix/base32.js';
import { sha256Hash } from '../../src/nix/hash.js';
import type { NarInfo } from '../../src/nix/narinfo.js';
import { formatPublicKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';
import { hashPartOf } from '../../src/nix/store-path.js';
import { startFaultProxy, type FaultRule } from '../helpers/fault-proxy.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';
import { s3ClientFor, startS3rver, type RunningS3rver } from '../helpers/s3rver.js';

const key = generateSigningKey('s3-test-1');
const publicKey = formatPublicKey(publicKeyOf(key));
const fastRetry = { baseMs: 20, capMs: 100, budgetMs: 20_000, log: () => {} };
const cleanups: (() => Promise<unknown>)[] = [];
/** Nix 2.8 warns this way when substituting; `nix copy` and newer Nix say "lacks a valid signature". */
const NIX_REFUSES_SIGNATURE = /is not signed by any of the keys in 'trusted-public-keys'|lacks a valid signature/;
const AWS_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'AWS_PROFILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  'AWS_EC2_METADATA_DISABLED',
];
const savedEnv = Object.fromEntries(AWS_VARIABLES.map((name) => [name, process.env[name]]));

let s3: RunningS3rver;
let scratch: string;

/** The SDK reads credentials from the environment; tests set exactly what they mean to. */
function setAwsEnv(values: Partial<Record<string, string>>): void {
  for (const name of AWS_VARIABLES) delete process.env[name];
  Object.assign(
    process.env,
    { AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'none'), AWS_CONFIG_FILE: join(scratch, 'none'), AWS_EC2_METADATA_DISABLED: 'true' },
    values,
  );
}

function narUploadFromFile(narFile: string, fileSize: number, fileHashBase32: string): NarUpload {
  return {
    narUrl: `nar/${fileHashBase32}.nar`,
    fileSize,
    fileHashBase32,
    compression: 'none',
    localPath: narFile,
    open: () => createReadStream(narFile),
  };
}

/** A real built path, its NAR from `nix-store --dump`, and a narinfo signed as push would (compression none). */
async function fixture(tag: string): Promise<NarFixture> {
  const storePath = await buildWithNix(`s3-${tag}`, `mkdir -p $out; echo ${tag} > $out/name; head -c 300000 /dev/urandom > $out/blob`);
  return uncompressedNarFixture(storePath, scratch, key);
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function open(url: string): BinaryCache {
  const cache = createS3Cache(new URL(url), { retry: fastRetry });
  cleanups.push(async () => cache.close?.());
  return cache;
}

beforeAll(async () => {
  requireNix();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-s3-test-'));
  cleanups.push(() => rm(scratch, { recursive: true, force: true }));
  s3 = await startS3rver();
  cleanups.push(() => s3.stop());
  setAwsEnv(s3.env);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('s3:// URLs', () => {
  it('reads the query parameters Nix reads', () => {
    expect(parseS3Url(new URL('s3://bucket?region=eu-west-1&endpoint=minio.local:9000&scheme=http&profile=ci'), {})).toEqual({
      bucket: 'bucket',
      prefix: '',
      region: 'eu-west-1',
      endpoint: 'http://minio.local:9000',
      profile: 'ci',
    });
    expect(parseS3Url(new URL('s3://bucket?endpoint=https://s3.example.com'), {})).toMatchObject({
      endpoint: 'https://s3.example.com',
      region: 'us-east-1',
    });
    expect(parseS3Url(new URL('s3://bucket?endpoint=s3.example.com'), {}).endpoint).toBe('https://s3.example.com');
    expect(parseS3Url(new URL('s3://bucket/sub/dir/'), { AWS_REGION: 'ap-south-1' })).toMatchObject({
      prefix: 'sub/dir/',
      region: 'ap-south-1',
      endpoint: undefined,
    });
  });
});

describe('s3 cache against s3rver', () => {
  it('writes nix-cache-info, uploads, and real Nix substitutes over plain HTTP', async () => {
    const cache = open(s3.s3Url);
    await expect(cache.info()).rejects.toThrow(/has no nix-cache-info/);
    await cache.writeCacheInfo!('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    expect(await cache.info()).toMatchObject({ storeDir: '/nix/store', wantMassQuery: true, priority: 40, substituterUrl: s3.s3Url });

    const path = await fixture('main');
    const hashPart = hashPartOf(path.storePath);
    const absent = '11111111111111111111111111111111';
    expect(await cache.missing([hashPart, absent])).toEqual(new Set([hashPart, absent]));
    await cache.upload(path.upload, path.narInfo);
    expect(await cache.missing([hashPart, absent])).toEqual(new Set([absent]));
    expect(await cache.getNarInfo(hashPart)).toContain(`StorePath: ${path.storePath}\n`);
    expect(await cache.getNarInfo(absent)).toBeUndefined();
    expect(await sha256Of((await cache.getFile(path.upload.narUrl))!)).toBe(createHash('sha256').update(path.nar).digest('hex'));
    const narinfoResponse = await fetch(`${s3.httpUrl}/${hashPart}.narinfo`);
    expect(narinfoResponse.headers.get('content-type')).toBe('text/x-nix-narinfo');
    expect((await fetch(`${s3.httpUrl}/${path.upload.narUrl}`, { method: 'HEAD' })).headers.get('content-type')).toBe(
      'application/x-nix-nar',
    );

    await substituteOrThrow(path.storePath, s3.httpUrl, publicKey);
    const wrongKey = formatPublicKey(publicKeyOf(generateSigningKey('s3-test-1')));
    await expect(substituteOrThrow(path.storePath, s3.httpUrl, wrongKey)).rejects.toThrow(NIX_REFUSES_SIGNATURE);
  });

  it('streams a ~100 MB NAR as a multipart upload, byte-identical', async () => {
    const narFile = join(scratch, 'big.nar');
    const out = createWriteStream(narFile);
    const hash = createHash('sha256');
    for (let written = 0; written < 100 * 1024 * 1024; written += 1 << 20) {
      const chunk = randomBytes(1 << 20);
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    const digest = hash.digest();
    const upload = narUploadFromFile(narFile, 100 * 1024 * 1024, encodeBase32(digest));
    const storePath = `/nix/store/${'2'.repeat(32)}-big`;
    const narInfo: NarInfo = {
      storePath,
      url: upload.narUrl,
      compression: 'none',
      narHash: sha256Hash(digest),
      narSize: upload.fileSize,
      references: [],
      sigs: [],
    };
    // Through a proxy that only records, to see the parts go by.
    const proxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
    cleanups.push(() => proxy.stop());
    const cache = open(`s3://${s3.bucket}?endpoint=${proxy.url}`);
    await cache.upload(upload, narInfo);
    const calls = proxy.requests.map(
      (request) => `${request.method} ${request.path.replace(/uploadId=[^&]+/, 'uploadId=ID')} ${request.status}`,
    );
    const parts = calls.filter((call) => /^PUT \S+partNumber=\d+/.test(call));
    expect(calls[0]).toMatch(/^POST \/nix-cache\/nar\/\w+\.nar\?uploads/);
    expect(parts).toHaveLength(7); // 100 MiB in 16 MiB parts
    expect(calls.filter((call) => /^POST \S+uploadId=ID \d+$/.test(call))).toHaveLength(1);
    expect(calls.at(-1)).toMatch(/\.narinfo.* 200$/);
    const head = await fetch(`${s3.httpUrl}/${upload.narUrl}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(upload.fileSize));
    expect(await sha256Of((await cache.getFile(upload.narUrl))!)).toBe(digest.toString('hex'));

    // A part the server refuses for good: the multipart upload is aborted, no parts left behind.
    const invalidPart = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidPart</Code><Message>refused</Message></Error>';
    proxy.addRule({
      method: 'PUT',
      path: /partNumber=3\b/,
      times: 10,
      action: { kind: 'status', status: 400, headers: { 'content-type': 'application/xml' }, body: invalidPart },
    });
    const other = { ...upload, narUrl: 'nar/other.nar' };
    // One line naming the cache and the server's status.
    await expect(cache.upload(other, { ...narInfo, url: other.narUrl })).rejects.toThrow(
      /^the server refused PUT part 3 of 7 of nar\/other\.nar to s3:\/\/nix-cache at http:\/\/127\.0\.0\.1:\d+ \(HTTP 400 InvalidPart\)$/,
    );
    const aborted = proxy.requests.filter((request) => request.path.includes('nar/other.nar') && request.method === 'DELETE');
    expect(aborted).toHaveLength(1);
    expect(proxy.requests.some((request) => request.path.includes('.narinfo') && request.startedAt > aborted[0]!.startedAt)).toBe(false);
    expect((await fetch(`${s3.httpUrl}/nar/other.nar`, { method: 'HEAD' })).status).toBe(404);
  });

  it('retries through a faulty proxy and writes the narinfo only after the NAR', async () => {
    const proxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
    cleanups.push(() => proxy.stop());
    // The SDK retries 3 times itself; four 503s make our own retry step in as well.
    proxy.addRule({ method: 'PUT', path: '.narinfo', times: 4, action: { kind: 'status', status: 503 } });
    proxy.addRule({ method: 'PUT', path: '/nar/', action: { kind: 'drop', afterBytes: 100_000 } });
    const cache = open(`s3://${s3.bucket}?endpoint=${proxy.url}&region=us-east-1`);
    const path = await fixture('retry');
    await cache.upload(path.upload, path.narInfo);
    const narPuts = proxy.requests.filter((request) => request.path.includes(path.upload.narUrl));
    const narinfoPuts = proxy.requests.filter((request) => request.path.includes('.narinfo'));
    expect(narPuts.map((request) => request.fault)).toEqual(['drop', undefined]);
    expect(narinfoPuts.map((request) => request.status)).toEqual([503, 503, 503, 503, 200]);
    expect(narinfoPuts[0]!.startedAt).toBeGreaterThanOrEqual(narPuts[1]!.completedAt);
    await substituteOrThrow(path.storePath, s3.httpUrl, publicKey);
  });
});

describe('an S3 server that stalls', () => {
  it('a PUT the server never answers times out (idle timeout), ends in one UserError, and no narinfo is written', async () => {
    const proxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
    cleanups.push(() => proxy.stop());
    // Every NAR PUT is held far longer than the idle timeout: the server has gone quiet.
    proxy.addRule({ method: 'PUT', path: '/nar/', times: 100, action: { kind: 'delay', ms: 30_000 } });
    const cache = createS3Cache(new URL(`s3://${s3.bucket}/stalled?endpoint=${proxy.url}&region=us-east-1`), {
      retry: { baseMs: 20, capMs: 100, budgetMs: 2000, log: () => {} },
      timeouts: { idleMs: 500 },
    });
    cleanups.push(async () => cache.close?.());
    const path = await fixture('stalled');
    const started = Date.now();
    const error = await cache.upload(path.upload, path.narInfo).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(
      / failed \d+ times in \d+ s; last error: the request socket timed out after 500 ms of inactivity$/,
    );
    expect(elapsed).toBeLessThan(20_000);
    expect(proxy.requests.filter((request) => request.path.includes('/nar/')).length).toBeGreaterThan(1);
    expect(proxy.requests.filter((request) => request.path.includes('.narinfo'))).toEqual([]);
    const narinfo = await fetch(`${s3.httpUrl}/stalled/${hashPartOf(path.storePath)}.narinfo`);
    expect(narinfo.status).toBe(404);
  });
});

describe('s3 credentials', () => {
  it('uses a profile from the shared credentials file', async () => {
    const credentials = join(scratch, 'credentials');
    await writeFile(
      credentials,
      '[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[s3rver]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n',
    );
    setAwsEnv({ AWS_SHARED_CREDENTIALS_FILE: credentials });
    try {
      await open(`${s3.s3Url}&profile=s3rver`).writeCacheInfo!('StoreDir: /nix/store\n');
      const error = await open(s3.s3Url).writeCacheInfo!('StoreDir: /nix/store\n').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).message).toMatch(
        /^s3:\/\/nix-cache at http:\/\/127\.0\.0\.1:\d+ refused our credentials: the server does not know this access key id \(HTTP 403 InvalidAccessKeyId\)$/,
      );
      expect((error as UserError).hint).toContain('AWS_ACCESS_KEY_ID');
    } finally {
      setAwsEnv(s3.env);
    }
  });

  it('says how to give credentials when there are none', async () => {
    setAwsEnv({});
    try {
      const error = await open(s3.s3Url).writeCacheInfo!('StoreDir: /nix/store\n').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).message).toMatch(/^no AWS credentials found for s3:\/\/nix-cache/);
    } finally {
      setAwsEnv(s3.env);
    }
  });
});

describe('narinfo lookups on s3rver: by listing the bucket when there are many', () => {
  const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
  const randomHash = (): string => Array.from(randomBytes(32), (byte) => ALPHABET[byte % 32]).join('');
  const prefix = 'lookups';
  let present: string[];
  let absent: string[];

  beforeAll(async () => {
    // s3rver answers 500 to a listing that would be truncated: fewer keys than one page here.
    present = Array.from({ length: 400 }, randomHash);
    absent = Array.from({ length: 150 }, randomHash);
    const client = s3ClientFor(s3);
    cleanups.push(async () => client.destroy());
    const keys = [...present.map((hash) => `${hash}.narinfo`), 'nix-cache-info', 'nar/0abc.nar.zst', 'log/x.drv'];
    for (let start = 0; start < keys.length; start += 50) {
      await Promise.all(
        keys
          .slice(start, start + 50)
          .map((key) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${key}`, Body: 'x' }))),
      );
    }
  });

  async function lookUp(rules: FaultRule[] = []): Promise<{ missing: Set<string>; heads: number; lists: number }> {
    const proxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
    cleanups.push(() => proxy.stop());
    for (const rule of rules) proxy.addRule(rule);
    const cache = open(`s3://${s3.bucket}/${prefix}?endpoint=${proxy.url}`);
    const missing = await cache.missing([...present, ...absent]);
    return {
      missing,
      heads: proxy.requests.filter((request) => request.method === 'HEAD').length,
      lists: proxy.requests.filter((request) => request.method === 'GET' && request.path.includes('list-type=2')).length,
    };
  }

  it('550 lookups: exactly the absent ones missing, from a few listings and no HEAD', async () => {
    const { missing, heads, lists } = await lookUp();
    expect([...missing].sort()).toEqual([...absent].sort());
    expect(heads).toBe(0);
    expect(lists).toBeGreaterThan(0);
    expect(lists).toBeLessThanOrEqual(4);
  });

  it('a narinfo someone else deleted is missing at the next lookup', async () => {
    const client = s3ClientFor(s3);
    cleanups.push(async () => client.destroy());
    const gone = present.slice(0, 3);
    for (const hash of gone) await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${hash}.narinfo` }));
    const { missing } = await lookUp();
    expect([...missing].sort()).toEqual([...absent, ...gone].sort());
    present = present.slice(3);
    absent = [...absent, ...gone];
  });

  it('a key that may not list the bucket (403): the same answer, by HEAD', async () => {
    const { missing, heads, lists } = await lookUp([{ method: 'GET', path: 'list-type=2', action: { kind: 'status', status: 403 } }]);
    expect([...missing].sort()).toEqual([...absent].sort());
    expect(lists).toBeGreaterThan(0);
    expect(heads).toBe(present.length + absent.length);
  });
});
