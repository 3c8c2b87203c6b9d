import { watch, type FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk } from '../helpers/cachix-env.js';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from '../helpers/fault-proxy.js';
import { buildWithNix, hashOf, run } from '../helpers/nix.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Nix substitutes a path only when every path it references can be had too, so a reader of the
 * cache must never find a narinfo whose references have none yet: each reference's narinfo lands
 * before its referrer's. Checked here on the order the narinfos land, as the server (or the folder)
 * sees it, on a closure where an unordered push would break it: a 3 MB base, slow to compress,
 * under three tiny paths and a tiny top, pushed with 8 uploads at once.
 */

let servers: ServerWorld;
/** Every path of the closure, with the paths it references (itself left out). */
let closure: Map<string, string[]>;
let top: string;

beforeAll(async () => {
  let base: string;
  [servers, base] = await Promise.all([
    startServerWorld('upload-order'),
    buildWithNix('order-base', 'head -c 3000000 /dev/urandom > $out'),
  ]);
  const middles = await Promise.all([0, 1, 2].map((index) => buildWithNix(`order-middle-${index}`, 'echo $dep0 > $out', { deps: [base] })));
  top = await buildWithNix('order-top', 'echo $dep0 $dep1 $dep2 > $out', { deps: middles });
  closure = new Map();
  for (const path of [base, ...middles, top]) {
    const references = (await run('nix-store', ['-q', '--references', path])).trim().split('\n').filter(Boolean);
    closure.set(
      path,
      references.filter((reference) => reference !== path),
    );
  }
  expect([...closure.values()].flat().length).toBe(6);
});
afterAll(() => servers?.stop());

/** Every closure path's narinfo landed, each after the narinfos of all it references. */
function expectReferencesFirst(landed: string[]): void {
  expect([...landed].sort()).toEqual([...closure.keys()].map(hashOf).sort());
  for (const [path, references] of closure) {
    for (const reference of references) {
      expect(landed.indexOf(hashOf(reference)), `${reference} lands before ${path}, which references it`).toBeLessThan(
        landed.indexOf(hashOf(path)),
      );
    }
  }
}

/**
 * The narinfo PUTs through a recording proxy, in the order they were stored: a narinfo counts as
 * landed when the server finished storing it, and a referrer's PUT must not even start before then.
 */
function expectPutsReferencesFirst(requests: readonly RecordedRequest[]): void {
  // S3 clients add a query (`?x-id=PutObject`) to the object's path.
  const narinfoOf = (request: RecordedRequest): string | undefined => /([0-9a-z]{32})\.narinfo(\?|$)/.exec(request.path)?.[1];
  const narinfoPuts = requests.filter((request) => request.method === 'PUT' && narinfoOf(request) !== undefined);
  const hashOfPut = (request: RecordedRequest): string => narinfoOf(request)!;
  const stored = new Map<string, RecordedRequest>();
  for (const request of narinfoPuts)
    if (request.status !== undefined && request.status < 300 && !stored.has(hashOfPut(request))) stored.set(hashOfPut(request), request);
  expect([...stored.keys()].sort()).toEqual([...closure.keys()].map(hashOf).sort());
  for (const [path, references] of closure) {
    const firstPut = narinfoPuts.find((request) => hashOfPut(request) === hashOf(path))!;
    for (const reference of references) {
      const referenceStored = stored.get(hashOf(reference))!;
      expect(
        referenceStored.completedAt,
        `${reference} stored (at ${referenceStored.completedAt}) before ${path}'s narinfo is sent (at ${firstPut.startedAt})`,
      ).toBeLessThanOrEqual(firstPut.startedAt);
    }
  }
}

describe('narinfos land references first, on every kind of cache', () => {
  it('file://: the narinfos appear in the folder references first', async () => {
    const { world, scratch } = servers;
    const dir = join(scratch, 'file-order');
    await mkdir(dir, { recursive: true });
    expectOk(await world.create('order-file', `file://${dir}`), 'create');
    // inotify reports the renames that put each narinfo in place, in the order they happen.
    const landed: string[] = [];
    const watcher: FSWatcher = watch(dir, (_event, name) => {
      const hash = /^([0-9a-z]{32})\.narinfo$/.exec(String(name))?.[1];
      if (hash && !landed.includes(hash)) landed.push(hash);
    });
    try {
      expectOk(await world.run(['push', 'order-file', '-j', '8', top]), 'push');
      // The push has exited, so every rename happened; its events may still be on their way.
      await waitUntil('an inotify event for each narinfo', () => landed.length === closure.size, { details: () => landed.join(', ') });
    } finally {
      watcher.close();
    }
    expectReferencesFirst(landed);
  });

  it('HTTP (nginx): the narinfo PUTs are stored references first', async () => {
    const { world, nginx } = servers;
    const proxy: FaultProxy = await startFaultProxy(nginx.url);
    try {
      expectOk(await world.create('order-http', `${proxy.url}/order-http`), 'create');
      expectOk(await world.run(['push', 'order-http', '-j', '8', top]), 'push');
      expectPutsReferencesFirst(proxy.requests);
    } finally {
      await proxy.stop();
    }
  });

  it('S3 (s3rver): the narinfo PUTs are stored references first', async () => {
    const { world, s3 } = servers;
    const proxy: FaultProxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
    try {
      const url = `s3://${s3.bucket}/order-s3?endpoint=127.0.0.1:${new URL(proxy.url).port}&scheme=http&region=us-east-1`;
      expectOk(await world.create('order-s3', url), 'create');
      expectOk(await world.run(['push', 'order-s3', '-j', '8', top]), 'push');
      expectPutsReferencesFirst(proxy.requests);
    } finally {
      await proxy.stop();
    }
  });
});
