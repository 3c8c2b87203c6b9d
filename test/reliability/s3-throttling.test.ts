import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Cache } from '../../src/caches/s3.js';
import { encodeBase32 } from '../../src/nix/base32.js';
import { sha256Hash } from '../../src/nix/hash.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from '../helpers/fault-proxy.js';
import { motoClient, startMoto, type RunningMoto } from '../helpers/moto.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { buildTinyClosure, type TinyClosure } from '../helpers/tiny-paths.js';

// Real buckets throttle: S3 answers 503 SlowDown and some S3-compatible servers 429 with
// Retry-After, and connections drop. A proxy on loopback in front of moto does all three while a
// push runs; the push must finish, slow itself down, and send a failed part again alone.

const MIB = 1024 * 1024;
const SLOW_DOWN = {
  kind: 'status' as const,
  status: 503,
  headers: { 'content-type': 'application/xml' },
  body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
};
/** Leaves of the closure pushed through the faults: enough requests for every kind of fault, and more than one burst. */
const PATHS = 60;
const TOO_MANY = { kind: 'status' as const, status: 429, headers: { 'retry-after': '2' }, body: 'too many requests' };

/** Requests that stored a whole NAR object: a PutObject (not a part) or a completed multipart upload, that the server took. */
function narStores(requests: RecordedRequest[]): string[] {
  return requests
    .filter((request) => request.status === 200 && request.path.includes('/nar/'))
    .filter(
      (request) =>
        (request.method === 'PUT' && !request.path.includes('partNumber=')) ||
        (request.method === 'POST' && request.path.includes('uploadId=')),
    )
    .map((request) => request.path.replace(/\?.*/, ''));
}

describe('a push through drops, 503 SlowDown bursts and 429 Retry-After, to moto', () => {
  let moto: RunningMoto;
  let proxy: FaultProxy;
  let world: CachixEnv;
  let tiny: TinyClosure;
  let client: S3Client;
  let scratch: string;
  let proxiedUrl: string;

  beforeAll(async () => {
    [moto, tiny, world, scratch] = await Promise.all([
      startMoto(),
      buildTinyClosure(PATHS, `throttle-${process.pid}-${Date.now()}`),
      makeCachixEnv(),
      mkdtemp(join(tmpdir(), 'cachix-throttle-')),
    ]);
    proxy = await startFaultProxy(moto.endpoint, { preserveHost: true, random: seededRandom(27) });
    client = motoClient(moto);
    Object.assign(world.env, moto.env, {
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    proxiedUrl = moto.s3Url.replace(new URL(moto.endpoint).host, new URL(proxy.url).host);
    expectOk(await world.run(['create', 'throttled', '--url', proxiedUrl]), 'create');
  }, 120_000);

  afterAll(async () => {
    client?.destroy();
    await proxy?.stop();
    await moto?.stop();
    await world?.cleanup();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it(`a ${PATHS + 1}-path closure: the push completes, slows down, and stores each NAR once`, async () => {
    const before = proxy.requests.length;
    proxy.addRule({ probability: 0.1, times: Infinity, action: { kind: 'reset' } });
    proxy.addRule({ afterRequests: before + 20, times: 12, action: SLOW_DOWN });
    proxy.addRule({ afterRequests: before + 60, times: 3, action: TOO_MANY });
    proxy.addRule({ afterRequests: before + 100, times: 12, action: SLOW_DOWN });
    const pushed = await world.run(['push', 'throttled', tiny.root], { env: { CI: 'true' } });
    const requests = proxy.requests.slice(before);
    proxy.clearRules();
    expect(pushed.stderr).toMatch(new RegExp(`pushed ${PATHS + 1} paths`));
    expect(pushed.code).toBe(0);
    // The faults really happened, and the log says we slowed down and honoured Retry-After.
    expect(requests.filter((request) => request.fault === 'reset').length).toBeGreaterThan(10);
    expect(requests.filter((request) => request.status === 503).length).toBeGreaterThanOrEqual(12);
    expect(requests.filter((request) => request.status === 429).length).toBe(3);
    expect(pushed.stderr).toMatch(/asked us to slow down \(HTTP 503 SlowDown\): at most \d+ requests at once/);
    expect(pushed.stderr).toMatch(/retry \d+ in 2\.0 s/);
    // Every NAR stored once, give or take one whole upload again.
    const stores = narStores(requests);
    expect(stores.length - new Set(stores).size).toBeLessThanOrEqual(1);
    // Every narinfo is there (asked of moto itself, past the proxy).
    const listed = await client.send(new ListObjectsV2Command({ Bucket: moto.bucket, Delimiter: '/' }));
    const narinfos = (listed.Contents ?? []).filter((object) => object.Key!.endsWith('.narinfo'));
    expect(narinfos).toHaveLength(PATHS + 1);
  }, 300_000);

  it('a NAR forced into two big parts: the part the server refuses is sent again alone', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, moto.env, {
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const cache = createS3Cache(new URL(proxiedUrl), { maxParts: 2, retry: { baseMs: 20, capMs: 100, budgetMs: 20_000, log: () => {} } });
    try {
      // 36 MiB: three of our 16 MiB parts, so two parts must be 18 MiB each.
      const nar = randomBytes(36 * MIB);
      const digest = createHash('sha256').update(nar).digest();
      const narFile = join(scratch, 'big.nar');
      await writeFile(narFile, nar);
      const fileHashBase32 = encodeBase32(digest);
      const upload = {
        narUrl: `nar/${fileHashBase32}.nar`,
        fileSize: nar.length,
        fileHashBase32,
        compression: 'none',
        localPath: narFile,
        open: () => createReadStream(narFile),
      };
      const before = proxy.requests.length;
      proxy.addRule({ method: 'PUT', path: /partNumber=2\b/, times: 1, action: SLOW_DOWN });
      await cache.upload(upload, {
        storePath: `/nix/store/${'3'.repeat(32)}-big`,
        url: upload.narUrl,
        compression: 'none',
        narHash: sha256Hash(digest),
        narSize: nar.length,
        references: [],
        sigs: [],
      });
      const calls = proxy.requests
        .slice(before)
        .map((request) => `${request.method} ${request.path.replace(/uploadId=[^&]+/, 'ID')} ${request.status} ${request.bodyBytes}`);
      expect(calls.filter((call) => call.includes('?uploads'))).toHaveLength(1);
      expect(calls.filter((call) => call.includes('partNumber=1'))).toEqual([expect.stringMatching(new RegExp(` 200 ${18 * MIB}$`))]);
      expect(calls.filter((call) => call.includes('partNumber=2'))).toEqual([
        expect.stringMatching(/ 503 /),
        expect.stringMatching(new RegExp(` 200 ${18 * MIB}$`)),
      ]);
      const head = await client.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: upload.narUrl }));
      expect(head.ETag).toMatch(/-2"$/);
      const stored = await client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: upload.narUrl }));
      const storedHash = createHash('sha256');
      for await (const chunk of stored.Body as AsyncIterable<Buffer>) storedHash.update(chunk);
      expect(storedHash.digest('hex')).toBe(digest.toString('hex'));
    } finally {
      await cache.close?.();
      process.env = saved;
    }
  }, 120_000);
});
