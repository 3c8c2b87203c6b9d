import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix } from '../helpers/nix.js';

let world: CachixEnv;
let scratch: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-flags-'));
  expectOk(await world.create('flags', `file://${join(scratch, 'c')}`), 'create');
});
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true })]));

describe('flag values', () => {
  it('-j 0 and -j -3 are usage errors (exit 2) saying the least value', async () => {
    for (const jobs of ['0', '-3']) {
      const result = await world.run(['push', 'flags', '-j', jobs, '/nix/store/00000000000000000000000000000000-x']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain('--jobs must be a whole number of at least 1');
    }
  });

  it('-m none -l 5: the level is ignored, and a warning says so', async () => {
    const path = await buildWithNix('flags-none', 'echo none > $out');
    const result = expectOk(await world.run(['push', 'flags', '-m', 'none', '-l', '5', path]), 'push -m none -l 5');
    expect(result.stderr).toContain('warning: -l 5 is ignored: -m none does not compress');
  });
});
