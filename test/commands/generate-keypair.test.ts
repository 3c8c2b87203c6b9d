import { readFile, stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import type { CliResult } from '../helpers/cli.js';

/*
 * A signing key is the identity of a cache: every path signed with it is trusted by that key
 * alone. Losing it to an overwrite makes everything pushed so far untrusted, so no command may
 * replace one.
 */

let world: CachixEnv;

beforeEach(async () => {
  world = await makeCachixEnv();
});
afterEach(async () => world.cleanup());

function expectRefused(result: CliResult, message: string, hint: string): void {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe(`cachix: ${message}\n  ${hint}\n`);
}

describe('cachix generate-keypair', () => {
  it('stores a new key 0600 and prints only its public half', async () => {
    const url = `file://${world.home}/fresh`;
    expectOk(await world.create('fresh', url, { flags: ['--no-signing-key'] }), 'create --no-signing-key');
    const result = expectOk(await world.run(['generate-keypair', 'fresh']), 'generate-keypair');
    const entry = (await loadConfig(world.configPath)).caches.fresh!;
    expect(result.stdout).toBe(`${entry.publicKey}\n`);
    expect(entry.publicKey).toMatch(/^fresh-1:[A-Za-z0-9+/]{43}=$/);
    expect(entry.signingKey).toMatch(/^fresh-1:[A-Za-z0-9+/]{86}==$/);
    expect(entry.url).toBe(url);
    expect((await stat(world.configPath)).mode & 0o777).toBe(0o600);
  });

  it('refuses to replace an existing key, and leaves the config byte for byte as it was', async () => {
    expectOk(await world.create('kept', `file://${world.home}/kept`, { flags: ['--no-signing-key'] }), 'create');
    const first = expectOk(await world.run(['generate-keypair', 'kept']), 'first generate-keypair').stdout.trim();
    const before = await readFile(world.configPath);
    const again = await world.run(['generate-keypair', 'kept', '--key-name', 'kept-2']);
    expectRefused(
      again,
      `kept already has a signing key (public key ${first})`,
      `a new key would make every path signed so far untrusted; to move to a new key without cutting clients off: cachix generate-keypair kept --rotate`,
    );
    expect((await readFile(world.configPath)).equals(before)).toBe(true);
  });

  it('refuses for a cache made by create, which already holds a key', async () => {
    const publicKey = expectOk(await world.create('made'), 'create').stdout.trim();
    const before = await readFile(world.configPath);
    expectRefused(
      await world.run(['generate-keypair', 'made']),
      `made already has a signing key (public key ${publicKey})`,
      `a new key would make every path signed so far untrusted; to move to a new key without cutting clients off: cachix generate-keypair made --rotate`,
    );
    expect((await readFile(world.configPath)).equals(before)).toBe(true);
  });

  it('adds a key to a cache created without one, keeping its URL', async () => {
    const url = `file://${world.home}/unsigned`;
    expectOk(await world.create('unsigned', url, { flags: ['--no-signing-key'] }), 'create --no-signing-key');
    const publicKey = expectOk(await world.run(['generate-keypair', 'unsigned']), 'generate-keypair').stdout.trim();
    const entry = (await loadConfig(world.configPath)).caches.unsigned!;
    expect(entry).toMatchObject({ url, publicKey });
    expect(entry.signingKey).toMatch(/^unsigned-1:/);
  });
});

describe('cachix create of a name that exists', () => {
  it('refuses, and keeps the key and the config byte for byte', async () => {
    expectOk(await world.create('twice'), 'first create');
    const before = await readFile(world.configPath);
    const url = (await loadConfig(world.configPath)).caches.twice!.url;
    expectRefused(
      await world.run(['create', 'twice']),
      `a cache named twice already exists (${url})`,
      `pick another name, or remove [caches.twice] from ${world.configPath}`,
    );
    expect((await readFile(world.configPath)).equals(before)).toBe(true);
  });
});
