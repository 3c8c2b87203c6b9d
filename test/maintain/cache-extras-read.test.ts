import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix, hashOf } from '../helpers/nix.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';

/**
 * What push writes beside a path (build logs, `.ls` listings, `debuginfo/` entries), read back by
 * `info` (counted, from every kind of listing) and by `verify` (each `.ls` checked against the
 * NAR it lists, from the same read of the NAR that checks its hashes).
 */
const BUILD_ID = 'cd456789abcdef0123456789abcdef01234567';
let world: CachixEnv;
let propfind: RunningNginx;
let autoindex: RunningNginx;
let s3: RunningS3rver;
/** More than 1 MiB of NAR: digested on the worker threads. */
let large: string;
/** A few bytes: digested on the main thread. */
let small: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  [propfind, autoindex, s3] = await Promise.all([
    startNginx({ listing: 'propfind' }),
    startNginx({ listing: 'autoindex' }),
    startS3rver('extras-read'),
  ]);
  large = await buildWithNix(
    'extras-read-large',
    [
      'echo "the build log of the large one"',
      'mkdir -p $out/share $out/lib/debug/.build-id/cd',
      'head -c 2500000 /dev/urandom > $out/share/big',
      'printf 0123456789 > $out/share/10',
      `printf debug > $out/lib/debug/.build-id/cd/${BUILD_ID}.debug`,
    ].join('\n'),
  );
  small = await buildWithNix(
    'extras-read-small',
    'echo "the build log of the small one"; mkdir -p $out/share; printf 0123456789 > $out/share/10',
  );
  expectOk(await world.create('local'), 'create local');
  expectOk(await world.create('dav', propfind.url), 'create dav');
  expectOk(await world.create('index', autoindex.url), 'create index');
  expectOk(await world.create('bucket', s3.s3Url, { env: s3.env }), 'create bucket');
});

afterAll(async () => {
  await Promise.all([propfind?.stop(), autoindex?.stop(), s3?.stop()]);
  await world?.cleanup();
});

function localDir(): string {
  return join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'local');
}

describe('info counts build logs, listings and debug-info entries', () => {
  const kinds = [
    { name: 'file cache', cache: 'local', env: () => ({}) },
    { name: 'nginx (PROPFIND)', cache: 'dav', env: () => ({}) },
    { name: 'nginx (autoindex JSON)', cache: 'index', env: () => ({}) },
    { name: 's3rver', cache: 'bucket', env: () => s3.env },
  ];
  for (const kind of kinds) {
    it(`${kind.name}: two logs, two listings, one debug-info entry`, async () => {
      const env = kind.env();
      expectOk(await world.run(['push', kind.cache, large, small, '--logs', '--listings', '--debug-info'], { env }), 'push');
      const json = expectOk(await world.run(['info', kind.cache, '--json'], { env }), 'info --json');
      const summary = JSON.parse(json.stdout) as { paths: number; extras: unknown };
      expect(summary.paths).toBe(2);
      expect(summary.extras).toEqual({ logs: 2, listings: 2, debugInfo: 1 });
      const human = expectOk(await world.run(['info', kind.cache], { env }), 'info');
      expect(human.stdout).toMatch(/^build logs {4}2$/m);
      expect(human.stdout).toMatch(/^listings {6}2$/m);
      expect(human.stdout).toMatch(/^debug info {4}1$/m);
    });
  }
});

describe('verify checks each listing against its NAR', () => {
  async function tamperListing(read: () => Promise<Buffer>, write: (bytes: Buffer) => Promise<void>, compressed: boolean): Promise<void> {
    const bytes = await read();
    const text = (compressed ? brotliDecompressSync(bytes) : bytes).toString('utf8');
    // share/10 holds ten bytes: the listing now says eleven.
    const tampered = text.replace('"10":{"type":"regular","size":10,', '"10":{"type":"regular","size":11,');
    expect(tampered).not.toBe(text);
    await write(compressed ? brotliCompressSync(tampered) : Buffer.from(tampered));
  }

  it('file cache: ok while they agree; a changed .ls is named, on the main thread and on the digest workers', async () => {
    // Pushed by the info test above; pushed again here so this test stands alone.
    expectOk(await world.run(['push', 'local', large, small, '--listings']), 'push');
    const verified = expectOk(await world.run(['verify', 'local', large, small]), 'verify');
    expect(verified.stdout).toBe(`${large} ok\n${small} ok\n`);
    for (const path of [large, small]) {
      const file = join(localDir(), `${hashOf(path)}.ls`);
      await tamperListing(
        () => readFile(file),
        (bytes) => writeFile(file, bytes),
        false,
      );
    }
    const result = await world.run(['verify', 'local', large, small]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      [large, small]
        .map((path) => `${path} FAIL: its listing ${hashOf(path)}.ls does not match its NAR: it differs at /share/10\n`)
        .join(''),
    );
  });

  it('nginx, listing stored with ls-compression=br: read back through its encoding, checked the same', async () => {
    const web = await startNginx();
    try {
      const created = expectOk(await world.create('brweb', web.url), 'create');
      const publicKey = created.stdout.trim();
      const signingKey = /signing_key = "([^"]+)"/.exec((await readFile(world.configPath, 'utf8')).split('[caches.brweb]')[1]!)![1]!;
      expectOk(
        await world.run(['push', `${web.url}?ls-compression=br`, large, small, '--listings'], { env: { CACHIX_SIGNING_KEY: signingKey } }),
        'push',
      );
      const verifyWeb = (): ReturnType<CachixEnv['run']> => world.run(['verify', web.url, '--public-key', publicKey, large, small]);
      const verified = expectOk(await verifyWeb(), 'verify');
      expect(verified.stdout).toBe(`${large} ok\n${small} ok\n`);
      const file = join(web.root, `${hashOf(large)}.ls`);
      await tamperListing(
        () => readFile(file),
        (bytes) => writeFile(file, bytes),
        true,
      );
      const result = await verifyWeb();
      expect(result.code).toBe(1);
      expect(result.stdout).toBe(
        `${large} FAIL: its listing ${hashOf(large)}.ls does not match its NAR: it differs at /share/10\n${small} ok\n`,
      );
    } finally {
      await web.stop();
    }
  });
});
