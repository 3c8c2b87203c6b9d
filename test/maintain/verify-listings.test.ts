import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTING_MIN_LOOKUPS } from '../../src/caches/http-listed-lookup.js';
import { LISTING_MIN_LOOKUPS as S3_LISTING_MIN_LOOKUPS } from '../../src/caches/s3.js';
import { loadConfig } from '../../src/config.js';
import { localCacheDir } from '../../src/config-paths.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { hashOf } from '../helpers/nix.js';
import { startNginx } from '../helpers/nginx.js';
import { s3ClientFor, startS3rver } from '../helpers/s3rver.js';
import { buildTinyClosure, type TinyClosure } from '../helpers/tiny-paths.js';

/**
 * `verify` reads a path's `.ls` only where the cache has one. A server that lists its root (nginx
 * PROPFIND, nginx autoindex JSON, S3 ListObjectsV2) says which in one listing, so no request is
 * sent for an absent `.ls`; a present one is still read and checked against its NAR (a tampered
 * one is caught). A server that does not list gets one GET per path, as before. Requests are
 * counted through a proxy in front of each server.
 *
 * The subject is reading, not pushing: the closure is pushed once into a file cache, and each
 * nginx serves a copy of that cache's folder (registered under the same signing key). Only
 * s3rver, which serves no folder, is pushed to over the network, with a closure just past S3's
 * own (lower) listing threshold.
 */
let world: CachixEnv;
/** Enough paths for the HTTP listing. */
let closure: TinyClosure;
/** Enough for S3's, which lists from fewer lookups (a push to S3 costs more than a copy). */
let s3Closure: TinyClosure;
/** The file cache the closure was pushed to, and the key it is signed with. */
let pushed: { dir: string; signingKey: string };
const stops: Array<() => Promise<void>> = [];

interface Served {
  /** The cache's URL through the counting proxy. */
  url: string;
  env: NodeJS.ProcessEnv;
  /** It serves a copy of the pushed file cache: nothing to push. */
  copied: boolean;
  /** The closure it holds (or is pushed). */
  closure: TinyClosure;
  proxy: FaultProxy;
  readListing(hashPart: string): Promise<Buffer>;
  writeListing(hashPart: string, bytes: Buffer): Promise<void>;
}

async function nginxServed(listing: 'propfind' | 'autoindex' | undefined, folder: string): Promise<Served> {
  const nginx = await startNginx(listing ? { listing } : {});
  stops.push(() => nginx.stop());
  const proxy = await startFaultProxy(nginx.url);
  stops.push(() => proxy.stop());
  await cp(pushed.dir, join(nginx.root, folder), { recursive: true });
  const file = (hashPart: string): string => join(nginx.root, folder, `${hashPart}.ls`);
  return {
    url: `${proxy.url}/${folder}`,
    env: {},
    copied: true,
    closure,
    proxy,
    readListing: (hashPart) => readFile(file(hashPart)),
    writeListing: (hashPart, bytes) => writeFile(file(hashPart), bytes),
  };
}

async function s3rverServed(folder: string): Promise<Served> {
  const s3 = await startS3rver('verify-listings');
  stops.push(() => s3.stop());
  const proxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
  stops.push(() => proxy.stop());
  const client = s3ClientFor(s3);
  stops.push(async () => client.destroy());
  const key = (hashPart: string): string => `${folder}/${hashPart}.ls`;
  return {
    url: `s3://${s3.bucket}/${folder}?endpoint=127.0.0.1:${new URL(proxy.url).port}&scheme=http&region=us-east-1`,
    env: s3.env,
    copied: false,
    closure: s3Closure,
    proxy,
    readListing: async (hashPart) => {
      const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key(hashPart) }));
      return Buffer.from(await object.Body!.transformToByteArray());
    },
    writeListing: async (hashPart, bytes) => {
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key(hashPart), Body: bytes }));
    },
  };
}

beforeAll(async () => {
  world = await makeCachixEnv();
  closure = await buildTinyClosure(LISTING_MIN_LOOKUPS, 'verify-listings');
  s3Closure = await buildTinyClosure(S3_LISTING_MIN_LOOKUPS, 'verify-listings-s3');
  const withListing = listed(closure);
  const name = 'verify-ls-pushed';
  expectOk(await world.run(['create', name]), 'create (file)');
  expectOk(await world.run(['push', name, '--listings', ...withListing]), 'push --listings (file)');
  expectOk(await world.run(['push', name, closure.root]), 'push (file)');
  const signingKey = (await loadConfig(world.configPath)).caches[name]?.signingKey;
  if (!signingKey) throw new Error(`create ${name} left no signing key in ${world.configPath}`);
  pushed = { dir: localCacheDir(name, world.env), signingKey };
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await world?.cleanup();
});

/** Two paths with a listing, the rest of the closure without. */
function listed(paths: TinyClosure): string[] {
  return paths.leaves.slice(0, 2);
}

/** GETs of `.ls` files that reached the server, by hash part. */
function listingGets(proxy: FaultProxy, since: number): string[] {
  return proxy.requests
    .slice(since)
    .filter((request) => request.method === 'GET' && /\.ls(\?|$)/.test(request.path))
    .map((request) => /([^/]{32})\.ls(\?|$)/.exec(request.path)![1]!)
    .sort();
}

const kinds: Array<{ name: string; lists: boolean; serve: (folder: string) => Promise<Served> }> = [
  { name: 'nginx (PROPFIND)', lists: true, serve: (folder) => nginxServed('propfind', folder) },
  { name: 'nginx (autoindex JSON)', lists: true, serve: (folder) => nginxServed('autoindex', folder) },
  { name: 's3rver (ListObjectsV2)', lists: true, serve: s3rverServed },
  { name: 'nginx without a listing', lists: false, serve: (folder) => nginxServed(undefined, folder) },
];

describe('verify asks only for the .ls files a listing shows', () => {
  kinds.forEach((kind, index) => {
    it(`${kind.name}: ${kind.lists ? 'no request for an absent .ls' : 'one GET per path'}; a tampered .ls is caught`, async () => {
      const name = `verify-ls-${index}`;
      const served = await kind.serve(name);
      const run = (args: string[]): ReturnType<CachixEnv['run']> => world.run(args, { env: served.env });
      const { closure } = served;
      const withListing = listed(closure);
      if (served.copied) {
        const register = ['create', name, '--url', served.url];
        expectOk(await world.run(register, { env: { CACHIX_SIGNING_KEY: pushed.signingKey } }), 'create (register the copy)');
      } else {
        expectOk(await run(['create', name, '--url', served.url]), 'create');
        expectOk(await run(['push', name, '--listings', ...withListing]), 'push --listings');
        expectOk(await run(['push', name, closure.root]), 'push');
      }

      const before = served.proxy.requests.length;
      const verified = expectOk(await run(['verify', name, '-r', closure.root]), 'verify');
      expect(verified.stdout.trim().split('\n')).toHaveLength(closure.closure.length);
      expect(verified.stdout).not.toMatch(/FAIL/);
      const asked = listingGets(served.proxy, before);
      if (kind.lists) expect(asked).toEqual(withListing.map(hashOf).sort());
      else expect(asked).toHaveLength(closure.closure.length);

      // The first one's listing now says its file is a byte longer than the NAR holds.
      const tamperedHash = hashOf(withListing[0]!);
      const text = (await served.readListing(tamperedHash)).toString('utf8');
      const tampered = text.replace(/"size":(\d+)/, (_, size: string) => `"size":${Number(size) + 1}`);
      expect(tampered).not.toBe(text);
      await served.writeListing(tamperedHash, Buffer.from(tampered));
      const result = await run(['verify', name, '-r', closure.root]);
      expect(result.code).toBe(1);
      const failures = result.stdout.split('\n').filter((line) => line.includes('FAIL'));
      expect(failures).toEqual([`${withListing[0]} FAIL: its listing ${tamperedHash}.ls does not match its NAR: it differs at /`]);
    });
  });
});
