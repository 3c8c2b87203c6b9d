import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix } from '../helpers/nix.js';

/* A mistyped name must not turn into advice that registers someone else's cachix.org cache. */

let world: CachixEnv;
let scratch: string;
let path: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-names-'));
  expectOk(await world.create('mycache', `file://${join(scratch, 'mycache')}`), 'create');
  path = await buildWithNix('names', 'echo names > $out');
});
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true })]));

describe('a cache name the config does not know', () => {
  it('push mycahce: says the name is unknown, lists the configured ones, never suggests generate-keypair mycahce', async () => {
    const result = await world.run(['push', 'mycahce', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `note: mycahce is not in ${world.configPath} (configured: mycache); looking it up on https://cachix.org`,
    );
    expect(result.stderr).toMatch(
      /^cachix: no cache named mycahce in the config \(configured: mycache\), and no auth token or CACHIX_SIGNING_KEY/m,
    );
    expect(result.stderr).toContain('cachix:mycahce');
    expect(result.stderr).not.toContain('generate-keypair');
  });

  it('a URL cache with no key: the advice is a command that works for a URL', async () => {
    const url = `file://${join(scratch, 'mycache')}`;
    const result = await world.run(['push', url, path]);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain(`generate-keypair ${url}`);
    expect(result.stderr).toContain(`CACHIX_SIGNING_KEY=<its key> cachix create NAME --url ${url}`);
  });

  it('an escape character in a name is shown escaped, never sent raw to the terminal', async () => {
    const result = await world.run(['push', 'my\x1b[31mcache', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('my\\x1b[31mcache');
    expect(result.stderr).not.toContain('\x1b');
  });
});
