import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpCache } from '../../src/caches/http.js';
import { lookupPipelined } from '../../src/caches/http-lookup.js';
import { LISTING_MIN_LOOKUPS } from '../../src/caches/http-listed-lookup.js';
import { encodeBase32 } from '../../src/nix/base32.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { hashOf } from '../helpers/nix.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startRclone, type RunningRclone } from '../helpers/rclone.js';
import { buildTinyClosure, type TinyClosure } from '../helpers/tiny-paths.js';

/**
 * From LISTING_MIN_LOOKUPS lookups on, an HTTP cache that lists its root (nginx dav-ext PROPFIND,
 * nginx autoindex JSON, rclone's WebDAV) answers them all from one listing, the same answer as one
 * HEAD per path; a server that will not list gets the HEADs. Requests are counted through a proxy.
 */
const fastRetry = { baseMs: 20, capMs: 100, budgetMs: 5_000, log: () => {} };
const LOOKUPS = LISTING_MIN_LOOKUPS + 100;

function hashParts(count: number): string[] {
  return Array.from({ length: count }, () => encodeBase32(randomBytes(20)));
}

interface Server {
  name: string;
  /** The folder the cache's files are in. */
  root: string;
  /** The cache's URL on the server itself. */
  url: string;
  stop(): Promise<void>;
}

const servers: Array<{ name: string; start: () => Promise<Server> }> = [
  { name: 'nginx (PROPFIND)', start: () => nginxServer('propfind') },
  { name: 'nginx (autoindex JSON)', start: () => nginxServer('autoindex') },
  { name: 'rclone (WebDAV)', start: rcloneServer },
];

async function nginxServer(listing: 'propfind' | 'autoindex'): Promise<Server> {
  const nginx: RunningNginx = await startNginx({ listing });
  return { name: listing, root: nginx.root, url: nginx.url, stop: () => nginx.stop() };
}

async function rcloneServer(): Promise<Server> {
  const rclone: RunningRclone = await startRclone();
  await mkdir(join(rclone.root, 'c'));
  return { name: 'rclone', root: join(rclone.root, 'c'), url: `${rclone.url}/c`, stop: () => rclone.stop() };
}

/** The cache's URL through a counting proxy in front of `server`. */
function throughProxy(proxy: FaultProxy, server: Server): string {
  return `${proxy.url}${new URL(server.url).pathname.replace(/\/$/, '')}`;
}

/** Deleted as another client (a gc elsewhere) deletes it: through the server, whose listing may be cached (rclone's is). */
async function deleteOnServer(server: Server, name: string): Promise<void> {
  const response = await fetch(`${server.url}/${name}`, { method: 'DELETE' });
  expect(response.status, `DELETE ${name}`).toBeLessThan(300);
}

function methodsSince(proxy: FaultProxy, from: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const request of proxy.requests.slice(from)) counts[request.method] = (counts[request.method] ?? 0) + 1;
  return counts;
}

for (const { name, start } of servers) {
  describe(`listed narinfo lookups: ${name}`, () => {
    let server: Server;
    let proxy: FaultProxy;
    let all: string[];
    let present: string[];
    beforeAll(async () => {
      server = await start();
      proxy = await startFaultProxy(new URL(server.url).origin);
      all = hashParts(LOOKUPS);
      present = all.filter((_, index) => index % 3 !== 0);
      for (const hashPart of present) await writeFile(join(server.root, `${hashPart}.narinfo`), `StorePath: /nix/store/${hashPart}-x\n`);
      // Names that are not `<hash>.narinfo` exactly: none makes its path present.
      for (const hashPart of all.filter((_, index) => index % 3 === 0).slice(0, 10)) {
        await writeFile(join(server.root, `${hashPart}.ls`), '{}');
        await writeFile(join(server.root, `${hashPart}.narinfo.tmp`), 'StorePath: half written\n');
      }
    });
    afterAll(async () => {
      await proxy?.stop();
      await server?.stop();
    });

    it('one listing answers every lookup, as HEADs do; a narinfo deleted since is missing at the next lookup', async () => {
      const base = new URL(`${throughProxy(proxy, server)}/`);
      const heads = await lookupPipelined(all, { base, idleMs: 10_000 });
      expect(heads.present.size + heads.absent.size).toBe(all.length);
      const cache = createHttpCache(new URL(throughProxy(proxy, server)), { retry: fastRetry });
      try {
        const from = proxy.requests.length;
        const missing = await cache.missing(all);
        expect([...missing].sort()).toEqual([...heads.absent].sort());
        expect([...missing].sort()).toEqual(all.filter((hashPart) => !present.includes(hashPart)).sort());
        const used = methodsSince(proxy, from);
        expect(used.HEAD ?? 0).toBe(0);
        expect((used.PROPFIND ?? 0) + (used.GET ?? 0)).toBeLessThanOrEqual(2);
        const deleted = present.slice(0, 5);
        for (const hashPart of deleted) await deleteOnServer(server, `${hashPart}.narinfo`);
        expect([...(await cache.missing(all))].sort()).toEqual([...missing, ...deleted].sort());
      } finally {
        await cache.close?.();
      }
    });
  });
}

describe('a server that does not list gets HEADs', () => {
  it('plain nginx (PROPFIND 405, no JSON index) and a listing refused with 501 or answered with HTML: the same answer, by HEAD', async () => {
    const nginx = await startNginx();
    const proxy = await startFaultProxy(nginx.url);
    try {
      const all = hashParts(LOOKUPS);
      const present = all.filter((_, index) => index % 2 === 0);
      for (const hashPart of present) await writeFile(join(nginx.root, `${hashPart}.narinfo`), `StorePath: /nix/store/${hashPart}-x\n`);
      const expected = all.filter((hashPart) => !present.includes(hashPart)).sort();
      const refusals = [
        undefined,
        { kind: 'status', status: 501 } as const,
        { kind: 'status', status: 207, headers: { 'content-type': 'text/html' }, body: '<html>no listing here</html>' } as const,
      ];
      for (const refusal of refusals) {
        proxy.clearRules();
        if (refusal) proxy.addRule({ method: 'PROPFIND', action: refusal });
        const cache = createHttpCache(new URL(proxy.url), { retry: fastRetry });
        try {
          const from = proxy.requests.length;
          expect([...(await cache.missing(all))].sort()).toEqual(expected);
          expect(methodsSince(proxy, from).PROPFIND).toBe(1);
          expect(methodsSince(proxy, from).HEAD).toBe(all.length);
          // Refused once: not asked again by this process.
          const again = proxy.requests.length;
          expect([...(await cache.missing(all))].sort()).toEqual(expected);
          expect(methodsSince(proxy, again).PROPFIND).toBeUndefined();
        } finally {
          await cache.close?.();
        }
      }
    } finally {
      await proxy.stop();
      await nginx.stop();
    }
  });

  it('a root of far more files than lookups (a small closure in a big cache): the listing is cut short, HEADs answer', async () => {
    const nginx = await startNginx({ listing: 'propfind' });
    const proxy = await startFaultProxy(nginx.url);
    try {
      const all = hashParts(LOOKUPS);
      const present = all.slice(0, 100);
      for (const hashPart of present) await writeFile(join(nginx.root, `${hashPart}.narinfo`), `StorePath: /nix/store/${hashPart}-x\n`);
      // Other paths' narinfos: about ten listed files per lookup.
      for (const hashPart of hashParts(LOOKUPS * 10)) await writeFile(join(nginx.root, `${hashPart}.narinfo`), 'StorePath: other\n');
      const cache = createHttpCache(new URL(proxy.url), { retry: fastRetry });
      try {
        expect([...(await cache.missing(all))].sort()).toEqual(all.slice(100).sort());
        expect(methodsSince(proxy, 0).PROPFIND).toBe(1);
        expect(methodsSince(proxy, 0).HEAD).toBe(all.length);
      } finally {
        await cache.close?.();
      }
    } finally {
      await proxy.stop();
      await nginx.stop();
    }
  });

  it('fewer lookups than LISTING_MIN_LOOKUPS: HEADs, no listing', async () => {
    const nginx = await startNginx({ listing: 'propfind' });
    const proxy = await startFaultProxy(nginx.url);
    try {
      const few = hashParts(LISTING_MIN_LOOKUPS - 1);
      const cache = createHttpCache(new URL(proxy.url), { retry: fastRetry });
      try {
        expect((await cache.missing(few)).size).toBe(few.length);
        expect(methodsSince(proxy, 0).PROPFIND).toBeUndefined();
      } finally {
        await cache.close?.();
      }
    } finally {
      await proxy.stop();
      await nginx.stop();
    }
  });
});

describe('push by listing: a narinfo deleted by someone else between two pushes is uploaded again', () => {
  let world: CachixEnv;
  let closure: TinyClosure;
  beforeAll(async () => {
    world = await makeCachixEnv();
    closure = await buildTinyClosure(LISTING_MIN_LOOKUPS + 20, `listed-${process.pid}-${Date.now()}`);
  });
  afterAll(async () => world?.cleanup());

  for (const { name, start } of servers) {
    it(name, async () => {
      const server = await start();
      const proxy = await startFaultProxy(new URL(server.url).origin);
      try {
        const cacheName = `listed${name.replace(/\W/g, '').slice(0, 12)}`;
        expectOk(await world.create(cacheName, throughProxy(proxy, server)), 'create');
        expectOk(await world.run(['push', cacheName, '--listings', closure.root]), 'first push');
        const victim = closure.leaves[7]!;
        await deleteOnServer(server, `${hashOf(victim)}.narinfo`);
        // Its listing stays: a name that is not `<hash>.narinfo` must not make it present.
        expect(await readdir(server.root)).toContain(`${hashOf(victim)}.ls`);
        const from = proxy.requests.length;
        const second = expectOk(await world.run(['push', cacheName, '--listings', closure.root]), 'second push');
        expect(await readdir(server.root)).toContain(`${hashOf(victim)}.narinfo`);
        const since = proxy.requests.slice(from);
        expect(since.filter((request) => request.method === 'HEAD')).toEqual([]);
        expect(since.filter((request) => request.method === 'PROPFIND' || request.method === 'GET').length).toBeGreaterThanOrEqual(1);
        expect(
          since.filter((request) => request.method === 'PUT' && request.path.endsWith('.narinfo')).map((request) => request.path),
        ).toEqual([expect.stringContaining(`${hashOf(victim)}.narinfo`)]);
        expect(second.stderr).toMatch(/1 path|pushed 1|1 of/);
      } finally {
        await proxy.stop();
        await server.stop();
      }
    });
  }
});
