import { readFile, stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.test-token-4f1d2c3b';
let world: CachixEnv;

beforeEach(async () => {
  world = await makeCachixEnv();
});

afterEach(async () => {
  await world.cleanup();
});

async function expectStored(token: string): Promise<void> {
  expect((await loadConfig(world.configPath)).authToken).toBe(token);
  expect((await stat(world.configPath)).mode & 0o777).toBe(0o600);
}

describe('cachix authtoken', () => {
  it('reads the token from stdin, stores it 0600 and never prints it', async () => {
    const result = expectOk(await world.run(['authtoken', '--stdin'], { input: `  ${TOKEN}\n` }), 'authtoken --stdin');
    await expectStored(TOKEN);
    expect(result.stdout).toContain(world.configPath);
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
  });

  it('takes the token as an argument and keeps the rest of the config', async () => {
    expectOk(await world.run(['create', 'mine']), 'create');
    const result = expectOk(await world.run(['authtoken', TOKEN]), 'authtoken TOKEN');
    await expectStored(TOKEN);
    expect((await loadConfig(world.configPath)).caches.mine?.signingKey).toMatch(/^mine-1:/);
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
  });

  it('replaces an earlier token', async () => {
    expectOk(await world.run(['authtoken', '--stdin'], { input: 'first-token-123456789' }), 'first authtoken');
    expectOk(await world.run(['authtoken', '--stdin'], { input: TOKEN }), 'second authtoken');
    await expectStored(TOKEN);
    expect(await readFile(world.configPath, 'utf8')).not.toContain('first-token-123456789');
  });

  it('says how to give a token when none is given, or stdin is empty, or both ways are used', async () => {
    const none = await world.run(['authtoken']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('cachix: no token given');
    expect(none.stderr).toContain('cachix authtoken --stdin');

    const empty = await world.run(['authtoken', '--stdin'], { input: '\n' });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('the token is empty');

    const both = await world.run(['authtoken', '--stdin', TOKEN], { input: TOKEN });
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('not both');
    expect(both.stdout + both.stderr).not.toContain(TOKEN);
    await expect(stat(world.configPath)).rejects.toThrow(/ENOENT/);
  });
});
