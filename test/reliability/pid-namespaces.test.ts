import { spawn, spawnSync } from 'node:child_process';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { CACHIX_BIN, type CliResult } from '../helpers/cli.js';
import { buildWithNix } from '../helpers/nix.js';
import { waitUntil } from '../helpers/wait.js';
import { checkCacheConsistent, directoryCache } from './consistency.js';

/*
 * One file cache shared by pushes whose pids live in different PID namespaces (containers on one
 * volume, or hosts on NFS): to each, the other's pids name no process, or some other process.
 * Neither may take the other's in-flight spool files for a killed push's leftovers.
 */

function requireUnshare(): void {
  const probe = spawnSync('unshare', ['--pid', '--fork', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(`this test needs \`unshare --pid --fork\` (util-linux, run as root): ${probe.stderr || probe.error?.message}`);
  }
}

function push(prefix: string[], args: string[], env: NodeJS.ProcessEnv): { done: Promise<CliResult> } {
  const command = [...prefix, process.execPath, CACHIX_BIN, ...args];
  const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return {
    done: new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    }),
  };
}

async function waitForSpoolFile(narDir: string, timeoutMs: number): Promise<void> {
  await waitUntil(
    `a spool file in ${narDir}`,
    async () => (await readdir(narDir).catch(() => [])).some((name) => name.startsWith('.tmp-')),
    { timeoutMs, intervalMs: 10 },
  );
}

let world: CachixEnv;
let scratch: string;
let large: string[];

beforeAll(async () => {
  requireUnshare();
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-pidns-'));
  large = await Promise.all(['pidns-a', 'pidns-b'].map((name) => buildWithNix(name, 'head -c 64000000 /dev/urandom > $out')));
}, 300_000);
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true })]));

describe('pushes in different PID namespaces into one file cache', () => {
  it('both complete: a push sweeping for leftovers leaves the other namespace’s in-flight NAR alone', async () => {
    const cacheDir = join(scratch, 'shared');
    expectOk(await world.create('shared', `file://${cacheDir}`), 'create');
    // A slow compression level keeps the host push's spool file in nar/ for seconds.
    const onHost = push([], ['push', 'shared', '-l', '9', large[0]!], world.env);
    await waitForSpoolFile(join(cacheDir, 'nar'), 120_000);
    // In a new PID namespace the host push's pid names no process: the old sweep removed its file.
    const inNamespace = push(['unshare', '--pid', '--fork'], ['push', 'shared', large[1]!], world.env);
    const [hostResult, namespaceResult] = await Promise.all([onHost.done, inNamespace.done]);
    expectOk(hostResult, 'the push on the host');
    expectOk(namespaceResult, 'the push in its own PID namespace');
    for (const path of large) await access(join(cacheDir, `${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`));
    const cache = directoryCache(cacheDir);
    expect((await checkCacheConsistent(cache.listNarinfos, cache.read, { listNars: cache.listNars })).problems).toEqual([]);
  }, 300_000);
});
