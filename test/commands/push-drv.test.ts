import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { NO_SUBSTITUTERS, requireNix, run } from '../helpers/nix.js';

/*
 * A .drv given to push is a store path like any other: it is pushed itself (with its closure,
 * as `nix-store -qR X.drv` lists it), as cachix does; its outputs are not looked for.
 */

let world: CachixEnv;
let scratch: string;
let cacheDir: string;

const hashPart = (path: string): string => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

async function instantiate(name: string): Promise<string> {
  const salt = `${process.pid}-${Date.now()}-${Math.random()}`;
  await writeFile(join(scratch, 'builder.sh'), `echo ${salt} > $out\n:\n`);
  const file = join(scratch, `${name}.nix`);
  await writeFile(
    file,
    `derivation { name = "${name}"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; args = [ ./builder.sh ]; salt = "${salt}"; }`,
  );
  return (await run('nix-instantiate', [file])).trim();
}

beforeAll(async () => {
  requireNix();
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-drv-'));
  cacheDir = join(scratch, 'cache');
  expectOk(await world.create('drvs', `file://${cacheDir}`), 'create');
});
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true })]));

describe('push of a .drv', () => {
  it('an unbuilt derivation: the .drv and its sources are pushed, no substituter is asked', async () => {
    const drv = await instantiate('unbuilt-drv');
    const closure = (await run('nix-store', ['-qR', drv])).trim().split('\n');
    expect(closure.length).toBe(2); // the .drv and builder.sh
    const result = expectOk(await world.run(['push', 'drvs', drv]), 'push X.drv');
    expect(result.stderr).toMatch(/pushed 2 paths/);
    for (const path of closure) expect(existsSync(join(cacheDir, `${hashPart(path)}.narinfo`)), path).toBe(true);
    expect(await readFile(join(cacheDir, `${hashPart(drv)}.narinfo`), 'utf8')).toContain(`StorePath: ${drv}\n`);
  });

  it('a built derivation: the .drv is pushed, not its output', async () => {
    const drv = await instantiate('built-drv');
    const output = (await run('nix-store', ['--realise', drv, ...NO_SUBSTITUTERS])).trim();
    expectOk(await world.run(['push', 'drvs', drv]), 'push X.drv');
    expect(existsSync(join(cacheDir, `${hashPart(drv)}.narinfo`))).toBe(true);
    expect(existsSync(join(cacheDir, `${hashPart(output)}.narinfo`))).toBe(false);
  });
});
