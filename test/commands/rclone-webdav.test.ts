import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder } from '../helpers/cache-files.js';
import { buildTestClosure, hashOf, nixClosure } from '../helpers/nix.js';
import { startRclone, type RunningRclone } from '../helpers/rclone.js';
import { substituteIntoFreshStore } from '../helpers/substitute.js';
import { buildChain, checkCacheConsistent, httpReader } from '../reliability/consistency.js';

/*
 * A second WebDAV server no one here wrote: Debian's `rclone serve webdav`, with its defaults.
 * Unlike nginx with create_full_put_path it makes no folder on PUT (404), answers MKCOL of an
 * existing folder with 201 and of a folder whose parent is missing with 409, and lists with its
 * own PROPFIND shapes. Everything a user does with an nginx cache works here too.
 */

let rclone: RunningRclone;
let world: CachixEnv;

beforeAll(async () => {
  [rclone, world] = await Promise.all([startRclone(), makeCachixEnv()]);
});
afterAll(async () => {
  await Promise.all([rclone?.stop(), world?.cleanup()]);
});

const mkcols = (prefix: string): string[] =>
  rclone
    .requests()
    .filter((request) => request.method === 'MKCOL' && request.path.startsWith(prefix))
    .map((request) => request.path);

describe('a cache in folders that do not exist yet: create, push, no-op push, substitute', () => {
  let closure: { top: string; lib: string; data: string };
  let publicKey: string;
  let url: string;

  beforeAll(async () => {
    closure = await buildTestClosure('rclone');
    url = `${rclone.url}/team/cache`;
  });

  it('create makes the missing folders and writes nix-cache-info', async () => {
    publicKey = expectOk(await world.run(['create', 'nested', '--url', url]), 'create').stdout.trim();
    expect(await readFile(join(rclone.root, 'team', 'cache', 'nix-cache-info'), 'utf8')).toContain('StoreDir: /nix/store');
    expect(mkcols('/team/')).toEqual(['/team/cache/', '/team/', '/team/cache/']);
  });

  it('the first push makes nar/ once and pushes the closure; the second pushes nothing and makes no folder', async () => {
    const first = expectOk(await world.run(['push', 'nested', closure.top]), 'push');
    expect(first.stderr).toMatch(/pushed 3 paths .* skipped 0/);
    expect(mkcols('/team/cache/nar')).toEqual(['/team/cache/nar/']);
    const before = rclone.requests().length;
    const second = expectOk(await world.run(['push', 'nested', closure.top]), 'second push');
    expect(second.stderr).toMatch(/pushed 0 paths .* skipped 3/);
    expect(
      rclone
        .requests()
        .slice(before)
        .filter((request) => request.method !== 'HEAD' && request.method !== 'GET'),
    ).toEqual([]);
  });

  it('real Nix substitutes the closure from rclone with signatures required', async () => {
    const fresh = await substituteIntoFreshStore(closure.top, url, publicKey);
    try {
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
      const random = await readFile(join(fresh.root, closure.data, 'share', 'random.bin'));
      expect(random.equals(await readFile(join(closure.data, 'share', 'random.bin')))).toBe(true);
    } finally {
      await rm(fresh.root, { recursive: true, force: true });
    }
    expect((await nixClosure(closure.top)).length).toBe(3);
  });
});

describe('a cache in a folder that exists: pin, info, gc and delete through PROPFIND', () => {
  let kept: string[];
  let dropped: string[];
  let publicKey: string;
  let url: string;
  const cacheRoot = (): string => join(rclone.root, 'existing');

  beforeAll(async () => {
    [kept, dropped] = await Promise.all([buildChain('rclone-kept', 3, 0), buildChain('rclone-dropped', 3, 0)]);
    url = `${rclone.url}/existing`;
    expect((await fetch(`${url}/`, { method: 'MKCOL' })).status).toBe(201);
    publicKey = expectOk(await world.create('existing', url), 'create').stdout.trim();
    expectOk(await world.run(['push', 'existing', kept.at(-1)!, dropped.at(-1)!]), 'push');
  });

  async function expectInfoEqualsRecount(expectedPaths: string[]): Promise<void> {
    const info = JSON.parse(expectOk(await world.run(['info', 'existing', '--json']), 'info').stdout);
    const files = await filesUnder(cacheRoot());
    expect(info.paths).toBe(expectedPaths.length);
    expect(files.filter((file) => /^[0-9a-z]{32}\.narinfo$/.test(file.name)).length).toBe(expectedPaths.length);
    expect(info.storedBytes).toBe(files.reduce((sum, file) => sum + file.size, 0));
    expect(info.problems).toEqual({ missingNars: [], missingReferences: [], unnamedNars: [], unreadableNarInfos: [] });
  }

  it('info equals a recount of the files rclone stores', async () => {
    await expectInfoEqualsRecount([...kept, ...dropped]);
  });

  it('pin makes pins/ and lists the pin', async () => {
    expect(expectOk(await world.run(['pin', 'existing', 'release', kept.at(-1)!]), 'pin').stdout).toBe(`release ${kept.at(-1)}\n`);
    expect(mkcols('/existing/pins')).toEqual(['/existing/pins/']);
    expect(JSON.parse(await readFile(join(cacheRoot(), 'pins', 'release.json'), 'utf8')).name).toBe('release');
    expect(expectOk(await world.run(['pin', 'existing', '--list']), 'pin --list').stdout).toMatch(new RegExp(`^release ${kept.at(-1)} `));
  });

  it('gc --older-than 0 leaves exactly the pinned closure, consistent, which real Nix substitutes', async () => {
    const result = expectOk(await world.run(['gc', 'existing', '--older-than', '0']), 'gc');
    expect(result.stdout.trim().split('\n').sort()).toEqual([...dropped].sort());
    const files = await filesUnder(cacheRoot());
    const narInfos = files.filter((file) => file.name.endsWith('.narinfo')).map((file) => file.name.slice(0, 32));
    expect(narInfos.sort()).toEqual(kept.map(hashOf).sort());
    const report = await checkCacheConsistent(async () => narInfos.map((hash) => `${hash}.narinfo`), httpReader(url), {
      listNars: async () => files.filter((file) => file.name.startsWith('nar/')).map((file) => file.name),
    });
    expect(report.problems).toEqual([]);
    await expectInfoEqualsRecount(kept);
    const fresh = await substituteIntoFreshStore(kept.at(-1)!, url, publicKey);
    try {
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    } finally {
      await rm(fresh.root, { recursive: true, force: true });
    }
  });

  it('delete refuses a pinned path; after pin --delete, delete --recursive empties the cache', async () => {
    const pinned = await world.run(['delete', 'existing', kept.at(-1)!]);
    expect(pinned.code).toBe(1);
    expect(pinned.stderr).toContain("is kept by the pin 'release'; nothing was deleted");
    expectOk(await world.run(['pin', 'existing', 'release', '--delete']), 'pin --delete');
    const result = expectOk(await world.run(['delete', 'existing', kept[0]!, '--recursive']), 'delete --recursive');
    expect(result.stdout.trim().split('\n')).toEqual([...kept].reverse());
    // gc-running.json stays on purpose: a later push reads when the last gc ended.
    expect((await filesUnder(cacheRoot())).map((file) => file.name)).toEqual(['gc-running.json', 'nix-cache-info']);
  });
});
