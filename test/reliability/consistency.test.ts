import { cp, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildChain, checkCacheConsistent, directoryCache } from './consistency.js';

/*
 * The checker the crash tests rely on must itself catch every kind of inconsistency: a real
 * cache made by a real push, then broken in each way a torn write could break it.
 */

let world: CachixEnv;
let scratch: string;
let pristine: string;
let chain: string[];

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-checker-'));
  pristine = join(scratch, 'pristine');
  chain = await buildChain('checker', 2, 1);
  expectOk(await world.create('checker', `file://${pristine}`), 'create');
  expectOk(await world.run(['push', 'checker', chain[1]!]), 'push');
});
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true })]));

async function brokenCopy(name: string, breakIt: (dir: string, narinfos: string[]) => Promise<void>): Promise<string[]> {
  const dir = join(scratch, name);
  await cp(pristine, dir, { recursive: true });
  const cache = directoryCache(dir);
  await breakIt(dir, (await cache.listNarinfos()).sort());
  return (await checkCacheConsistent(cache.listNarinfos, cache.read, { listNars: cache.listNars })).problems;
}

async function narOf(dir: string, narinfo: string): Promise<string> {
  return /^URL: (.*)$/m.exec(await readFile(join(dir, narinfo), 'utf8'))![1]!;
}

describe('checkCacheConsistent', () => {
  it('finds nothing wrong with what a push wrote', async () => {
    const cache = directoryCache(pristine);
    expect(await checkCacheConsistent(cache.listNarinfos, cache.read, { listNars: cache.listNars })).toEqual({ narinfos: 2, problems: [] });
  });

  it('a narinfo whose NAR is missing', async () => {
    const problems = await brokenCopy('missing-nar', async (dir, [first]) => unlink(join(dir, await narOf(dir, first!))));
    expect(problems.join('\n')).toMatch(/points at nar\/\S+, which does not exist/);
  });

  it('a NAR cut short (a torn write under its final name)', async () => {
    const problems = await brokenCopy('short-nar', async (dir, [first]) => truncate(join(dir, await narOf(dir, first!)), 1000));
    expect(problems.join('\n')).toMatch(/has 1000 bytes, \S+ says FileSize \d+/);
    expect(problems.join('\n')).toMatch(/a partial NAR under its final name/);
  });

  it('a NAR with other bytes of the same size', async () => {
    const problems = await brokenCopy('flipped-nar', async (dir, [first]) => {
      const path = join(dir, await narOf(dir, first!));
      const bytes = await readFile(path);
      bytes[bytes.length >> 1] ^= 0xff;
      await writeFile(path, bytes);
    });
    expect(problems.join('\n')).toMatch(/hashes to sha256:\S+, \S+ says FileHash sha256:/);
  });

  it('a narinfo whose reference has no narinfo (uploaded out of order)', async () => {
    const problems = await brokenCopy('missing-reference', async (dir) => {
      const deepest = chain[0]!.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      await unlink(join(dir, `${deepest}.narinfo`));
    });
    expect(problems.join('\n')).toMatch(new RegExp(`references ${chain[0]}, which has no narinfo`));
  });

  it('a narinfo that does not parse', async () => {
    const problems = await brokenCopy('garbage-narinfo', async (dir, [first]) => writeFile(join(dir, first!), 'StorePath: /nix/store/x\n'));
    expect(problems.join('\n')).toMatch(/does not parse/);
  });

  it('leftover spool files (.tmp-*) are not inconsistencies, but are listed as temp files', async () => {
    const dir = join(scratch, 'with-temp');
    await cp(pristine, dir, { recursive: true });
    await writeFile(join(dir, 'nar', '.tmp-123-abcdef.nar.zst'), 'partial');
    const cache = directoryCache(dir);
    expect((await checkCacheConsistent(cache.listNarinfos, cache.read, { listNars: cache.listNars })).problems).toEqual([]);
    expect(await cache.tempFiles()).toEqual(['nar/.tmp-123-abcdef.nar.zst']);
    expect((await readdir(join(dir, 'nar'))).length).toBe(3);
  });
});
