import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readlink, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { waitUntil } from '../helpers/wait.js';
import { buildWithNix, hashOf } from '../helpers/nix.js';

/*
 * A push at a real pseudo-terminal, as a user meets it: util-linux `script` makes the terminal,
 * `stty` gives it the size a CI runner's pty often has (0 columns, 0 rows). Such a terminal gets
 * plain lines; and SIGTERM stops a push whatever the progress display is doing.
 */

let world: CachixEnv;
let scratch: string;
let nginx: RunningNginx;
let stalling: FaultProxy;
let paths: string[];

interface PtyRun {
  child: ChildProcess;
  /** Everything the terminal showed so far. */
  output(): string;
  /** The pid of cachix itself (the shell under `script` execs it). */
  cachixPid(): Promise<number>;
  exited: Promise<number | null>;
}

function requireTool(name: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0)
    throw new Error(`these tests need ${name}: install it with \`apt-get install ${pkg}\``);
}

/** Runs `cachix ARGS` under `script` on a terminal of `columns` x `rows`. */
function cachixAtTerminal(args: string[], size: { columns: number; rows: number }): PtyRun {
  const pidFile = join(scratch, `pid-${Math.random().toString(36).slice(2)}`);
  const quoted = [process.execPath, CACHIX_BIN, ...args].map((word) => `'${word}'`).join(' ');
  const command = `stty cols ${size.columns} rows ${size.rows}; echo $$ > '${pidFile}'; exec ${quoted}`;
  const env: NodeJS.ProcessEnv = { ...process.env, ...world.env, TERM: 'xterm-256color' };
  delete env.CI;
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    // Only a whole pid above 1 is an answer: process.kill(0) would signal this test's own process group.
    cachixPid: () =>
      waitUntil('the pid in the pid file', async () => {
        const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
        return Number.isInteger(pid) && pid > 1 ? pid : undefined;
      }),
  };
}

/** Kills what is left of a run that failed its test, so the file ends either way. */
function killLeftovers(run: PtyRun, pid: number | undefined): void {
  if (pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  run.child.kill('SIGKILL');
}

beforeAll(async () => {
  requireTool('script', 'util-linux');
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-tty-'));
  nginx = await startNginx();
  stalling = await startFaultProxy(nginx.url);
  // The NAR uploads never get an answer: the push is reliably in the middle when the test acts.
  stalling.addRule({ method: 'PUT', path: '/nar/', times: 1000, action: { kind: 'delay', ms: 600_000 } });
  paths = await Promise.all(['one', 'two', 'three'].map((name) => buildWithNix(`tty-${name}`, `echo ${name} > $out`)));
  expectOk(await world.create('files'), 'create files');
  expectOk(await world.create('stalled', `${stalling.url}/stalled`), 'create stalled');
}, 120_000);
afterAll(async () => Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true }), stalling?.stop(), nginx?.stop()]));

describe('push at a terminal', () => {
  it('a terminal of 0 columns gets plain lines: the push completes and the paths are in the cache', async () => {
    const run = cachixAtTerminal(['push', 'files', ...paths], { columns: 0, rows: 0 });
    const timer = setTimeout(() => killLeftovers(run, undefined), 60_000);
    const code = await run.exited;
    clearTimeout(timer);
    expect(code, run.output().slice(0, 2000)).toBe(0);
    expect(run.output()).toContain('[3/3] pushed');
    expect(run.output()).toContain('pushed 3 paths');
    // Plain lines only: no cursor movement.
    expect(run.output()).not.toContain('\u001b[1A');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'files');
    const names = await readdir(cacheDir);
    for (const path of paths) expect(names).toContain(`${hashOf(path)}.narinfo`);
  }, 90_000);

  it('SIGTERM in the middle of a push at a 0-column terminal stops it with the interrupted line, exit 143', async () => {
    const before = stalling.requests.length;
    const run = cachixAtTerminal(['push', 'stalled', paths[0]!], { columns: 0, rows: 0 });
    let pid: number | undefined;
    try {
      pid = await run.cachixPid();
      await waitUntil('the NAR upload', () => stalling.requests.slice(before).some((r) => r.method === 'PUT' && r.path.includes('/nar/')));
      process.kill(pid, 'SIGTERM');
      expect(await run.exited).toBe(143);
      expect(run.output()).toContain('interrupted: 0 of 1 paths pushed; run again to finish');
    } finally {
      killLeftovers(run, pid);
    }
  }, 90_000);

  it('a terminal shrunk to 0 columns while the spinner draws: plain lines from then on, and SIGTERM still stops the push', async () => {
    const before = stalling.requests.length;
    const run = cachixAtTerminal(['push', 'stalled', paths[1]!], { columns: 80, rows: 24 });
    let pid: number | undefined;
    try {
      pid = await run.cachixPid();
      await waitUntil('the NAR upload', () => stalling.requests.slice(before).some((r) => r.method === 'PUT' && r.path.includes('/nar/')));
      await waitUntil('the spinner', () => run.output().includes('pushing 0/1 paths'));
      const terminal = await readlink(`/proc/${pid}/fd/2`);
      await new Promise<void>((resolve, reject) => {
        const stty = spawn('stty', ['-F', terminal, 'cols', '0', 'rows', '0']);
        stty.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`stty -F ${terminal} exited ${code}`))));
      });
      await waitUntil('the switch to plain lines', () => run.output().includes('progress goes on in plain lines'));
      process.kill(pid, 'SIGTERM');
      expect(await run.exited).toBe(143);
      expect(run.output()).toContain('interrupted: 0 of 1 paths pushed; run again to finish');
    } finally {
      killLeftovers(run, pid);
    }
  }, 90_000);
});
