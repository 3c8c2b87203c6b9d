import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { cachixInProcess, cachixRun } from '../helpers/cli.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';
import type * as EarlyClosure from '../../src/store/early-closure.js';
import { formatSigningKey, generateSigningKey } from '../../src/nix/signing.js';

/**
 * The tests run most command lines in their own process, through the built entry (runEntry): a
 * run there must leave nothing behind for the next, as a process that ends leaves nothing.
 */
const { takeEarlyClosure } = (await import(
  pathToFileURL(resolve(import.meta.dirname, '../../dist/store/early-closure.js')).href
)) as typeof EarlyClosure;

let world: CachixEnv;
let path: string;

beforeAll(async () => {
  requireNix();
  world = await makeCachixEnv();
  path = await buildWithNix('in-process-one', 'echo one > $out');
});
afterAll(async () => {
  await world?.cleanup();
});

describe('command lines run in this process', () => {
  it('nothing started early outlives its command line: a push the parser refused leaves no closure query behind', async () => {
    // The parser refuses the value after the entry started the query, before push could take it.
    const failed = await cachixInProcess(['push', 'mine', '-j', 'zero', path], { env: world.env });
    expect(failed.code).toBe(2);
    expect(failed.stderr).toMatch(/--jobs must be a whole number/);
    expect(takeEarlyClosure([path], new AbortController().signal)).toBeUndefined();
  });

  it("sees its own environment while it runs, and this process's again afterwards", async () => {
    const before = { ...process.env };
    const created = await cachixInProcess(['create', 'mine'], { env: world.env });
    expect(created.code, created.stderr).toBe(0);
    expect(existsSync(world.configPath), "the config under the run's XDG_CONFIG_HOME").toBe(true);
    expect(process.env).toEqual(before);
  });

  it("a command line started while another runs here gets this process's environment, not that run's", async () => {
    expect(process.env.CACHIX_SIGNING_KEY).toBeUndefined();
    const signingKey = formatSigningKey(generateSigningKey('in-process-1'));
    for (const name of ['keyed', 'keyless']) {
      await mkdir(join(world.home, name));
      await writeFile(join(world.home, name, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    }
    // The first run swaps process.env for its own at once (before its first await); the second
    // starts while it runs, without the key the first was given.
    const keyed = cachixInProcess(['push', `file://${world.home}/keyed`, path], { env: { ...world.env, CACHIX_SIGNING_KEY: signingKey } });
    // Its environment does not name the key at all: what it has, it has from this process.
    const { CACHIX_SIGNING_KEY: _unnamed, ...withoutKey } = world.env;
    const keyless = cachixRun(['push', `file://${world.home}/keyless`, path], { env: withoutKey });
    const pushed = await keyed;
    expect(pushed.code, pushed.stderr).toBe(0);
    const refused = await keyless;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no signing key/);
  });
});
