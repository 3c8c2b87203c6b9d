import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { CACHIX_BIN, startCachix } from '../helpers/cli.js';
import { buildWithNix } from '../helpers/nix.js';
import { createTestUser, runAs, type TestUser } from '../helpers/nix-user.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Failures Node reports in its own words (EACCES … mkdir, ENOENT … rename, EISDIR, spawn
 * EACCES): each must say what we were doing and what to do, in one line and a hint.
 */

let world: CachixEnv;
let scratch: string;
let user: TestUser;

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-raw-'));
  await chmod(scratch, 0o755);
  user = await createTestUser();
  expectOk(await world.create('here', `file://${join(scratch, 'cache')}`), 'create');
});
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true }), user?.remove()]));

function expectWorded(result: { code: number | null; stderr: string }, message: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/\b(EACCES|ENOTDIR|EISDIR|ENOENT): /);
  expect(result.stderr).not.toContain('--verbose for details');
}

describe('errors in words', () => {
  it('authtoken with a HOME the user cannot write (a real non-root user)', async () => {
    const home = join(scratch, 'root-owned-home');
    await mkdir(home, { mode: 0o755 });
    const result = await runAs(user.name, { HOME: home, PATH: process.env.PATH }, process.execPath, [
      CACHIX_BIN,
      'authtoken',
      'some-token-123456',
    ]);
    expectWorded(result, /^cachix: cannot write the config .*root-owned-home\/\.config\/cachix\/config\.toml: permission denied$/m);
    expect(result.stderr).toMatch(/CACHIX_CONFIG/);
  });

  it('a config that is a directory', async () => {
    const dir = join(scratch, 'config-dir');
    await mkdir(dir);
    expectWorded(
      await world.run(['push', 'here', '/nix/store/x'], { env: { CACHIX_CONFIG: dir } }),
      /^cachix: cannot read the config .*: it is a directory, not a file$/m,
    );
  });

  it('use -O with a file', async () => {
    const file = join(scratch, 'a-file');
    await writeFile(file, '');
    expectWorded(await world.run(['use', 'here', '-O', file]), /^cachix: -O .*a-file is a file, not a directory$/m);
  });

  it('watch-exec of something that is not a program', async () => {
    const result = await world.run(['watch-exec', 'here', '--', '/etc/passwd']);
    expect(result.code).toBe(127);
    expect(result.stderr).toMatch(/^cachix: cannot run \/etc\/passwd: it is not an executable program \(EACCES\)$/m);
    expect(result.stderr).toMatch(/chmod \+x/);
  });

  it('a file cache deleted while a push is storing into it', async () => {
    const large = await buildWithNix('vanishing', 'head -c 64000000 /dev/urandom > $out');
    const cacheDir = join(scratch, 'vanishing');
    expectOk(await world.create('vanishing', `file://${cacheDir}`), 'create');
    const push = startCachix(['push', 'vanishing', '-l', '9', large], world.env);
    await waitUntil(
      'a NAR being stored under nar/',
      async () => (await readdir(join(cacheDir, 'nar')).catch(() => [] as string[])).some((name) => name.startsWith('.tmp-')),
      { timeoutMs: 120_000, intervalMs: 10, details: push.stderr },
    );
    await rm(cacheDir, { recursive: true, force: true });
    expectWorded(
      { code: (await push.done).code, stderr: push.stderr() },
      /^cachix: the cache at .*vanishing changed under us: a file being stored vanished \(ENOENT\)/m,
    );
  }, 180_000);
});
