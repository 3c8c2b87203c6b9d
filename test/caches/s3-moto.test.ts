import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase32 } from '../../src/nix/base32.js';
import { formatNarInfo } from '../../src/nix/narinfo.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { motoClient, startMoto, type RunningMoto } from '../helpers/moto.js';
import { hashOf } from '../helpers/nix.js';
import { substituteOrThrow } from '../helpers/substitute.js';
import { buildTinyClosure, type TinyClosure } from '../helpers/tiny-paths.js';

// moto pages ListObjectsV2 as S3 does (s3rver cannot page at all). S3 and moto give at most 1,000
// keys a page, and at most what the request's max-keys asks; the proxy in front of moto asks for
// PAGE_KEYS, so every listing our commands make of a bucket of a few hundred narinfos takes several
// pages: the lookups of a push (pages starting after the next unanswered hash) and the listings of
// info, gc and delete (continuation tokens). Buckets past 1,000 keys a page are `npm run
// bench:maintain`'s (10,000 paths on moto).

const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
/** The most keys moto is asked for in one listing page (the proxy sets max-keys). */
const PAGE_KEYS = 100;
/** Made-up narinfos, all sorted between two of the real paths' hashes (see beforeAll). */
const SYNTHETIC = 100;

/** A ListObjectsV2 request as the client sent it, with max-keys set to PAGE_KEYS. */
function smallerPages(path: string): string {
  if (!path.includes('list-type=2')) return path;
  const url = new URL(path, 'http://moto');
  url.searchParams.set('max-keys', String(PAGE_KEYS));
  return url.pathname + url.search;
}
/** The real closure: a root and its leaves, pushed for real; Nix substitutes them back. */
const LEAVES = 70;

/** `count` hash parts sorting after `low` and before `high`: low's first 27 characters, then counting up. */
function hashesBetween(low: string, high: string, count: number): string[] {
  const differAt = [...low].findIndex((char, index) => char !== high[index]);
  if (differAt >= 27) throw new Error(`${low} and ${high} are too close to fit ${count} hashes between them`);
  let tail = [...low.slice(27)].reduce((value, char) => value * 32 + ALPHABET.indexOf(char), 0);
  if (tail + count >= 32 ** 5) throw new Error(`no room after ${low}`);
  return Array.from({ length: count }, () => {
    tail++;
    let text = '';
    for (let value = tail, digit = 0; digit < 5; digit++, value = Math.floor(value / 32)) text = ALPHABET[value % 32] + text;
    return low.slice(0, 27) + text;
  });
}

async function inBatches<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from(
      { length: limit },
      async () =>
        void (await (async () => {
          while (next < items.length) await work(items[next++]!);
        })()),
    ),
  );
}

/** Narinfos of made-up paths sharing one NAR, written straight through the S3 API; their stored bytes for gc. */
async function writeSyntheticNarinfos(client: S3Client, bucket: string, hashParts: string[]): Promise<number> {
  const nar = Buffer.from('synthetic NAR shared by every made-up path\n');
  const digest = createHash('sha256').update(nar).digest();
  const url = `nar/${encodeBase32(digest)}.nar`;
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: url, Body: nar }));
  let storedBytes = 0;
  await inBatches(hashParts, 16, async (hashPart) => {
    const text = formatNarInfo({
      storePath: `/nix/store/${hashPart}-synthetic`,
      url,
      compression: 'none',
      fileHash: { algorithm: 'sha256', digest },
      fileSize: nar.length,
      narHash: { algorithm: 'sha256', digest },
      narSize: nar.length,
      references: [],
      sigs: [],
    });
    storedBytes += nar.length + Buffer.byteLength(text);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${hashPart}.narinfo`, Body: text }));
  });
  return storedBytes;
}

describe('an S3 bucket of more narinfos than a listing page holds, on moto: every listing pages', () => {
  let moto: RunningMoto;
  let proxy: FaultProxy;
  let world: CachixEnv;
  let client: S3Client;
  let tiny: TinyClosure;
  let publicKey: string;
  let synthetic: string[];
  let syntheticBytes: number;
  /** The real hash that sorts right after every synthetic one: the first lookup page ends before it. */
  let firstAfterSynthetic: string;
  /** A file cache the bucket's real paths were copied into. */
  let copied: string;

  const listings = (): string[] =>
    proxy.requests
      .filter((request) => request.method === 'GET' && request.path.includes('list-type=2'))
      .map((request) => decodeURIComponent(request.path));

  beforeAll(async () => {
    [moto, tiny, world] = await Promise.all([startMoto(), buildTinyClosure(LEAVES, `moto-${process.pid}-${Date.now()}`), makeCachixEnv()]);
    // S3 signatures cover the Host header: the proxy passes it through unchanged.
    proxy = await startFaultProxy(moto.endpoint, { preserveHost: true, forwardPath: smallerPages });
    Object.assign(world.env, moto.env, {
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    client = motoClient(moto);
    const s3Url = moto.s3Url.replace(new URL(moto.endpoint).host, new URL(proxy.url).host);
    publicKey = expectOk(await world.run(['create', 'moto', '--url', s3Url]), 'create').stdout.trim();
    // Lookups are cut into four ranges of the sorted hashes; the first holds 18 of the 71. Made-up
    // narinfos between its 17th and 18th fill its first page, so that range needs a second page
    // starting after the 17th.
    const sorted = tiny.closure.map(hashOf).sort();
    firstAfterSynthetic = sorted[17]!;
    synthetic = hashesBetween(sorted[16]!, firstAfterSynthetic, SYNTHETIC);
  }, 120_000);

  afterAll(async () => {
    client?.destroy();
    await proxy?.stop();
    await moto?.stop();
    await world?.cleanup();
  });

  it('push uploads the closure, and real Nix substitutes it over plain HTTP', async () => {
    const pushed = expectOk(await world.run(['push', 'moto', tiny.root], { env: { CI: 'true' } }), 'push');
    expect(pushed.stderr).toMatch(/pushed 71 paths .*, skipped 0 already in/);
    await substituteOrThrow(tiny.root, moto.httpUrl, publicKey);
  }, 120_000);

  it('a no-op push lists page after page (StartAfter) and uploads nothing', async () => {
    // Newer than every pushed path (S3 dates have whole seconds), so gc below can tell them apart.
    const pushedAt = (await client.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: `${hashOf(tiny.root)}.narinfo` }))).LastModified!;
    while (Date.now() < pushedAt.getTime() + 1000) await new Promise((resolve) => setTimeout(resolve, 100));
    syntheticBytes = await writeSyntheticNarinfos(client, moto.bucket, synthetic);
    const before = proxy.requests.length;
    const again = expectOk(await world.run(['push', 'moto', tiny.root], { env: { CI: 'true' } }), 'no-op push');
    expect(again.stderr).toMatch(/pushed 0 paths .*, skipped 71 already in/);
    const pages = proxy.requests.slice(before).filter((request) => request.path.includes('list-type=2'));
    expect(pages.map((page) => decodeURIComponent(page.path)).some((path) => path.includes(`start-after=${firstAfterSynthetic}`))).toBe(
      true,
    );
    expect(proxy.requests.slice(before).filter((request) => request.method === 'PUT')).toEqual([]);
  }, 120_000);

  it('info counts every narinfo, across listing pages (continuation)', async () => {
    const before = listings().length;
    const info = JSON.parse(expectOk(await world.run(['info', 'moto', '--json']), 'info').stdout) as { paths: number };
    expect(info.paths).toBe(SYNTHETIC + LEAVES + 1);
    expect(
      listings()
        .slice(before)
        .some((path) => path.includes('continuation-token=')),
    ).toBe(true);
  }, 120_000);

  it('verify reads the closure back', async () => {
    const verified = expectOk(await world.run(['verify', 'moto', '-r', tiny.root]), 'verify');
    expect(verified.stdout.trim().split('\n')).toHaveLength(LEAVES + 1);
  }, 120_000);

  it('copy of everything the bucket lists into a file cache reads every page; the unsigned made-up paths are refused, Nix substitutes the rest', async () => {
    copied = join(world.home, 'copied');
    await mkdir(copied, { recursive: true });
    await writeFile(join(copied, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    const before = listings().length;
    const result = await world.run(['copy', 'moto', `file://${copied}`], { env: { CI: 'true' } });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`copied ${LEAVES + 1} paths .*, ${SYNTHETIC} not copied`));
    expect(result.stderr).toContain(`/nix/store/${synthetic[0]}-synthetic in moto has no signature by`);
    expect(
      listings()
        .slice(before)
        .some((path) => path.includes('continuation-token=')),
    ).toBe(true);
    await substituteOrThrow(tiny.root, `file://${copied}`, publicKey);
  }, 120_000);

  it('delete and gc see every page: gc keeps the newest (made-up) paths that fit and deletes exactly the rest', async () => {
    const deleted = expectOk(await world.run(['delete', 'moto', tiny.root]), 'delete');
    expect(deleted.stdout).toContain(tiny.root);
    const gc = expectOk(await world.run(['gc', 'moto', '--older-than', '0', '--max-size', String(syntheticBytes)]), 'gc');
    expect(gc.stdout.trim().split('\n').sort()).toEqual([...tiny.leaves].sort());
    expect(gc.stderr).toMatch(new RegExp(`deleted ${LEAVES} of ${SYNTHETIC + LEAVES} paths`));
  }, 180_000);

  it('copy from that file cache back into the bucket: its lookups page (StartAfter), and Nix substitutes from the bucket', async () => {
    const before = proxy.requests.length;
    const result = expectOk(
      await world.run(['copy', '--public-key', publicKey, `file://${copied}`, 'moto'], { env: { CI: 'true' } }),
      'copy into moto',
    );
    expect(result.stderr).toMatch(new RegExp(`copied ${LEAVES + 1} paths .*, skipped 0 already in moto`));
    const pages = proxy.requests.slice(before).filter((request) => request.path.includes('list-type=2'));
    expect(pages.some((page) => decodeURIComponent(page.path).includes('start-after='))).toBe(true);
    await substituteOrThrow(tiny.root, moto.httpUrl, publicKey);
  }, 120_000);
});

describe('moto checking signatures: a wrong secret is a refused credential, never a missing nix-cache-info', () => {
  let moto: RunningMoto;
  let world: CachixEnv;
  let path: string;

  beforeAll(async () => {
    [moto, world, { root: path }] = await Promise.all([
      startMoto({ authentication: true }),
      makeCachixEnv(),
      buildTinyClosure(1, `moto-auth-${process.pid}-${Date.now()}`),
    ]);
    Object.assign(world.env, moto.env, {
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    expectOk(await world.run(['create', 'signed', '--url', moto.s3Url]), 'create with the right key');
  }, 120_000);

  afterAll(async () => {
    await moto?.stop();
    await world?.cleanup();
  });

  it('push and info with a wrong secret: one line naming the refused credential (HTTP 403 SignatureDoesNotMatch)', async () => {
    const refused =
      /^cachix: s3:\/\/nix-cache at http:\/\/127\.0\.0\.1:\d+ refused our credentials: the secret key does not match the access key id \(HTTP 403 SignatureDoesNotMatch\)$/;
    const wrongSecret = { AWS_SECRET_ACCESS_KEY: `${moto.env.AWS_SECRET_ACCESS_KEY.slice(0, -1)}x` };
    for (const args of [
      ['push', 'signed', path],
      ['info', 'signed'],
    ]) {
      // As a user's process: the credentials the SDK reads at its start are the refused ones.
      const result = await world.spawn(args, { env: { ...wrongSecret, CI: 'true' } });
      expect(result.code, args[0]).toBe(1);
      const lines = result.stderr.trim().split('\n');
      expect(lines[0], args[0]).toMatch(refused);
      expect(lines[1], args[0]).toContain('AWS_SECRET_ACCESS_KEY');
      expect(lines, `${args[0]}: ${result.stderr}`).toHaveLength(2);
      expect(result.stderr).not.toMatch(/nix-cache-info/);
    }
    // The right key still works: the refusal was the secret, not the server.
    expect(expectOk(await world.run(['push', 'signed', path], { env: { CI: 'true' } }), 'push').stderr).toMatch(/pushed 2 paths/);
  }, 120_000);
});
