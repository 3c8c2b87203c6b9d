import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startCachix, type CliResult } from '../helpers/cli.js';
import { buildWithNix } from '../helpers/nix.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Ctrl-C or a SIGTERM in the middle of a push: the spooled NARs (hundreds of MB for a big path)
 * go with it, and one line says how far it got.
 */

let world: CachixEnv;
let scratch: string;
let nginx: RunningNginx;
let large: string;

async function spoolFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((name) => name.startsWith('.tmp-'));
}

/** Starts a push, waits until it is spooling a NAR into `spoolDir`, then sends `signal`. */
async function interruptWhileSpooling(
  args: string[],
  env: NodeJS.ProcessEnv,
  spoolDir: string,
  signal: NodeJS.Signals,
): Promise<CliResult> {
  const push = startCachix(args, env);
  await waitUntil(`a spool file in ${spoolDir}`, async () => (await spoolFiles(spoolDir)).length > 0 || push.child.exitCode !== null, {
    timeoutMs: 120_000,
    intervalMs: 10,
    details: push.stderr,
  });
  if ((await spoolFiles(spoolDir)).length === 0) throw new Error(`the push ended before it spooled into ${spoolDir}: ${push.stderr()}`);
  push.kill(signal);
  const { code } = await push.done;
  return { code, stdout: push.stdout(), stderr: push.stderr() };
}

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-interrupt-'));
  nginx = await startNginx();
  large = await buildWithNix('interrupted', 'head -c 64000000 /dev/urandom > $out');
}, 120_000);
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true }), nginx?.stop()]));

describe('a push interrupted by a signal', () => {
  it('SIGINT during a push to nginx: the spool in TMPDIR is removed, one line says how far it got, exit 130', async () => {
    const spoolDir = join(scratch, 'tmp');
    await mkdir(spoolDir);
    expectOk(await world.create('web', `${nginx.url}/web`), 'create');
    const result = await interruptWhileSpooling(['push', 'web', '-l', '9', large], { ...world.env, TMPDIR: spoolDir }, spoolDir, 'SIGINT');
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('interrupted: 0 of 1 paths pushed; run again to finish');
    expect(await spoolFiles(spoolDir)).toEqual([]);
  });

  it('SIGTERM during a push to a file cache: nothing is left in nar/, exit 143', async () => {
    const cacheDir = join(scratch, 'files');
    expectOk(await world.create('files', `file://${cacheDir}`), 'create');
    const result = await interruptWhileSpooling(['push', 'files', '-l', '9', large], world.env, join(cacheDir, 'nar'), 'SIGTERM');
    expect(result.code).toBe(143);
    expect(result.stderr).toContain('interrupted: 0 of 1 paths pushed; run again to finish');
    expect(await spoolFiles(join(cacheDir, 'nar'))).toEqual([]);
    expectOk(await world.run(['push', 'files', large]), 'the push run again');
  });
});
