import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCache } from '../../src/caches/file.js';
import { hashPartOf } from '../../src/nix/store-path.js';
import { generateSigningKey } from '../../src/nix/signing.js';
import { uncompressedNarFixture, type NarFixture } from '../helpers/nar-fixture.js';
import { buildWithNix } from '../helpers/nix.js';
import { mountSmallTmpfs } from '../helpers/tmpfs.js';

/*
 * The narinfo is what tells Nix a path exists; it may appear only once its NAR is stored
 * completely. Observed without racing anything: a directory stands where the NAR must go, so
 * storing the NAR fails, and at that moment no narinfo may exist. A cache that wrote the narinfo
 * first would be caught every time, not when a kill happens to land in the gap.
 */

const key = generateSigningKey('file-order-1');
let scratch: string;
let storePath: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cachix-file-cache-'));
  storePath = await buildWithNix('file-order', 'mkdir $out; echo in order > $out/file');
});
afterAll(async () => rm(scratch, { recursive: true, force: true }));

async function freshCache(name: string): Promise<FileCache> {
  const cache = new FileCache(join(scratch, name));
  await cache.writeCacheInfo('StoreDir: /nix/store\n');
  return cache;
}

/** Something that cannot be replaced by a file: a non-empty directory under the NAR's final name. */
async function blockNar(cache: FileCache, fixture: NarFixture): Promise<string> {
  const obstacle = join(cache.root, fixture.upload.narUrl);
  await mkdir(join(obstacle, 'in-the-way'), { recursive: true });
  return obstacle;
}

describe('file cache: the NAR is stored before its narinfo', () => {
  it.each([
    ['spooled inside the cache (stored by rename)', true],
    ['spooled elsewhere (stored by copy, then rename)', false],
  ])('%s: when the NAR cannot be stored, there is no narinfo; once it can, both are there', async (_what, inCache) => {
    const cache = await freshCache(inCache ? 'renamed' : 'copied');
    const spool = inCache ? join(cache.root, 'nar') : await mkdtemp(join(scratch, 'spool-'));
    const fixture = await uncompressedNarFixture(storePath, spool, key);
    const narinfoName = `${hashPartOf(storePath)}.narinfo`;
    const obstacle = await blockNar(cache, fixture);

    await expect(cache.upload(fixture.upload, fixture.narInfo)).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(await readdir(cache.root)).not.toContain(narinfoName);
    // Nothing half-copied is left beside it either.
    expect((await readdir(join(cache.root, 'nar'))).sort()).toEqual(
      inCache ? [basename(fixture.upload.localPath), basename(obstacle)].sort() : [basename(obstacle)],
    );

    await rm(obstacle, { recursive: true });
    await cache.upload(fixture.upload, fixture.narInfo);
    expect(await readdir(cache.root)).toContain(narinfoName);
    expect((await readFile(join(cache.root, fixture.upload.narUrl))).equals(fixture.nar)).toBe(true);
    expect(await cache.getNarInfo(hashPartOf(storePath))).toContain(`URL: ${fixture.upload.narUrl}\n`);
  });

  it('a disk that fills up while the narinfo is written: no narinfo at all, not an empty or partial one', async () => {
    const disk = await mountSmallTmpfs('1m');
    try {
      const cache = new FileCache(join(disk.dir, 'cache'));
      await cache.writeCacheInfo('StoreDir: /nix/store\n');
      const fixture = await uncompressedNarFixture(storePath, join(cache.root, 'nar'), key);
      // Fill every block: storing the NAR is a rename (no new blocks), the narinfo's bytes find no room.
      await expect(writeFile(join(disk.dir, 'filler'), Buffer.alloc(2 << 20, 1))).rejects.toThrow('ENOSPC');
      await expect(cache.upload(fixture.upload, fixture.narInfo)).rejects.toThrow(`no space left on the device holding ${cache.root}`);
      expect((await readdir(cache.root)).sort()).toEqual(['nar', 'nix-cache-info']);
    } finally {
      await disk.cleanup();
    }
  });

  it('a narinfo write that fails leaves no temporary file behind', async () => {
    const cache = await freshCache('narinfo-blocked');
    const fixture = await uncompressedNarFixture(storePath, join(cache.root, 'nar'), key);
    const narinfoPath = join(cache.root, `${hashPartOf(storePath)}.narinfo`);
    await mkdir(join(narinfoPath, 'in-the-way'), { recursive: true });
    await expect(cache.upload(fixture.upload, fixture.narInfo)).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect((await readdir(cache.root)).sort()).toEqual([`${hashPartOf(storePath)}.narinfo`, 'nar', 'nix-cache-info'].sort());
  });
});

describe('file cache lookups', () => {
  it('a closure larger than the readdir threshold: exactly the paths without a narinfo are missing', async () => {
    const root = join(scratch, 'lookup-by-readdir');
    await mkdir(join(root, 'nar'), { recursive: true });
    const hashPart = (i: number): string => `${i.toString().padStart(4, '0')}`.padEnd(32, 'a');
    // 300 narinfos present, 5 asked that are not, and files beside them that are not narinfos.
    for (let i = 0; i < 300; i++) await writeFile(join(root, `${hashPart(i)}.narinfo`), '');
    await writeFile(join(root, `${hashPart(900)}.ls`), '');
    await writeFile(join(root, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    const asked = [...Array.from({ length: 300 }, (_, i) => hashPart(i)), ...[900, 901, 902, 903, 904].map(hashPart)];
    const missing = await new FileCache(root).missing(asked);
    expect([...missing]).toEqual([900, 901, 902, 903, 904].map(hashPart));
  });
});
