import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';

let world: CachixEnv;
let scratch: string;
let nginx: RunningNginx;

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-create-'));
  nginx = await startNginx();
});
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true }), nginx?.stop()]));

describe('create on a URL that already holds a cache', () => {
  const dir = (): string => join(scratch, 'shared');
  const url = (): string => `file://${dir()}`;

  it('is refused: its nix-cache-info and key stay, no second entry is made', async () => {
    expectOk(await world.run(['create', 'first', '--url', url(), '--priority', '30']), 'first create');
    const info = await readFile(join(dir(), 'nix-cache-info'), 'utf8');
    expect(info).toContain('Priority: 30');
    const result = await world.run(['create', 'second', '--url', url()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cachix: ${url()} already holds a binary cache (Priority 30, WantMassQuery 1)`);
    expect(result.stderr).toContain('--force');
    expect(result.stderr).toContain(`CACHIX_SIGNING_KEY=<its secret key> cachix create second --url ${url()}`);
    expect(await readFile(join(dir(), 'nix-cache-info'), 'utf8')).toBe(info);
    expect((await loadConfig(world.configPath)).caches.second).toBeUndefined();
  });

  it('with CACHIX_SIGNING_KEY: registered with that key, nix-cache-info untouched', async () => {
    const first = (await loadConfig(world.configPath)).caches.first!;
    const info = await readFile(join(dir(), 'nix-cache-info'), 'utf8');
    const result = expectOk(
      await world.run(['create', 'again', '--url', url()], { env: { CACHIX_SIGNING_KEY: first.signingKey } }),
      'create with the existing key',
    );
    expect(result.stderr).toContain('registering it as it is');
    expect(result.stdout.trim()).toBe(first.publicKey);
    expect((await loadConfig(world.configPath)).caches.again).toMatchObject({ publicKey: first.publicKey, signingKey: first.signingKey });
    expect(await readFile(join(dir(), 'nix-cache-info'), 'utf8')).toBe(info);
  });

  it('with --no-signing-key: registered without a key, untouched', async () => {
    const info = await readFile(join(dir(), 'nix-cache-info'), 'utf8');
    expectOk(await world.run(['create', 'reader', '--url', url(), '--no-signing-key']), 'create --no-signing-key');
    expect((await loadConfig(world.configPath)).caches.reader).toMatchObject({ url: url(), signingKey: undefined });
    expect(await readFile(join(dir(), 'nix-cache-info'), 'utf8')).toBe(info);
  });

  it('with --force: started afresh, as asked', async () => {
    const result = expectOk(await world.run(['create', 'fresh', '--url', url(), '--force']), 'create --force');
    expect(await readFile(join(dir(), 'nix-cache-info'), 'utf8')).toContain('Priority: 41');
    expect(result.stdout.trim()).not.toBe((await loadConfig(world.configPath)).caches.first!.publicKey);
  });

  it('an HTTP cache too (nginx)', async () => {
    expectOk(await world.run(['create', 'web', '--url', `${nginx.url}/web`, '--priority', '20']), 'first create');
    const result = await world.run(['create', 'web2', '--url', `${nginx.url}/web`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/already holds a binary cache \(Priority 20/);
    expect(await readFile(join(nginx.root, 'web', 'nix-cache-info'), 'utf8')).toContain('Priority: 20');
  });
});

describe('the hint for a URL that already holds a cache', () => {
  it('quotes a URL with a space, so the command it gives runs as printed', async () => {
    const url = `file://${scratch}/my cache`;
    expectOk(await world.run(['create', 'spaced', '--url', url]), 'first create');
    const refused = await world.run(['create', 'spaced2', '--url', url]);
    expect(refused.code).toBe(1);
    const hinted = refused.stderr
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.endsWith('--no-signing-key'));
    expect(hinted).toBe(`cachix create spaced2 --url '${url}' --no-signing-key`);
    // Run as printed, by a shell, with `cachix` being the built binary.
    const shell = spawnSync('sh', ['-c', `cachix() { "${process.execPath}" "${CACHIX_BIN}" "$@"; }; ${hinted}`], {
      env: { ...process.env, ...world.env },
      encoding: 'utf8',
    });
    expect(shell.status, shell.stderr).toBe(0);
    expect((await loadConfig(world.configPath)).caches.spaced2).toMatchObject({ url, signingKey: undefined });
  });
});
