import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix } from '../helpers/nix.js';

/*
 * cachix.dhall is only a fallback, read for a token or key that neither the environment nor our
 * config has. A malformed one must not break the commands that do not need it; the ones that do
 * say which file and line.
 */

let world: CachixEnv;
let dhallPath: string;
let path: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  path = await buildWithNix('dhall-fallback', 'mkdir -p $out; echo fallback > $out/name');
  expectOk(await world.create('mine'), 'create');
  dhallPath = join(world.env.XDG_CONFIG_HOME!, 'cachix', 'cachix.dhall');
  await mkdir(join(world.env.XDG_CONFIG_HOME!, 'cachix'), { recursive: true });
  // A hand edit gone wrong: the key is not quoted.
  await writeFile(dhallPath, '{ authToken = ""\n, binaryCaches = [ { name = "x", secretKey = abc } ]\n}');
});
afterAll(async () => world?.cleanup());

const DHALL_ERROR = (): string => `cachix: ${dhallPath} line 2: expected a text literal, a list or a record`;

describe('a malformed cachix.dhall', () => {
  it('is not read into the way of a cache our config has a key for: push, info and verify go on', async () => {
    const pushed = expectOk(await world.run(['push', 'mine', path]), 'push');
    expect(pushed.stderr).toMatch(/pushed 1 paths/);
    expect(pushed.stderr).not.toContain(dhallPath);
    expectOk(await world.run(['info', 'mine']), 'info');
    expectOk(await world.run(['verify', 'mine', path]), 'verify');
  });

  it('a push that could only find its key there names the file and the line', async () => {
    const result = await world.run(['push', `file://${world.home}/other-cache`, path]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(DHALL_ERROR());
  });

  it('a cachix API cache, which may need its token, host or key, names the file and the line', async () => {
    const result = await world.run(['push', 'cachix:somecache', path]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(DHALL_ERROR());
  });
});
