import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CachixEnv, type LocalCache, makeLocalCache } from '../../helpers/cachix-env.js';
import { CACHIX_BIN } from '../../helpers/cli.js';
import { startCachix, waitUntil, type RunningCachix } from '../../helpers/daemon.js';
import { buildWithNix, requireNix } from '../../helpers/nix.js';
import { createTestUser, runAs, type TestUser } from '../../helpers/nix-user.js';
import { hasNarinfo } from '../../helpers/cache-files.js';

/*
 * The push daemon signs and pushes what its socket and inbox hand it, so both must be closed to
 * every other local user. A second, real local user (useradd) plays the neighbour who gets there
 * first, as on a machine with a shared /tmp.
 */

const PATH = '/usr/bin:/bin:/usr/sbin:/sbin';

describe('the daemon and another local user', () => {
  let local: LocalCache;
  let world: CachixEnv;
  let cacheDir: string;
  let user: TestUser;
  /** A path only the neighbour names: it must never reach the cache. */
  let bait: string;
  const scratch: string[] = [];
  const started: RunningCachix[] = [];

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('dmnsafe');
    ({ world, cacheDir } = local);
    user = await createTestUser();
    bait = await buildWithNix('dmnsafe-bait', 'echo bait > $out');
  });
  afterEach(async () => {
    for (const daemon of started.splice(0)) {
      daemon.kill('SIGKILL');
      await daemon.done;
    }
  });
  afterAll(async () => {
    await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
    await user?.remove();
    await local?.cleanup();
  });

  const folder = async (mode: number): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'cachix-dmnsafe-'));
    scratch.push(dir);
    await chmod(dir, mode);
    return dir;
  };
  const asNeighbour = async (script: string): Promise<{ code: number; stderr: string }> => runAs(user.name, { PATH }, 'sh', ['-c', script]);
  /** What the neighbour leaves: an open inbox with a job naming the bait, a FIFO and a link. */
  const plantInbox = async (inbox: string): Promise<void> => {
    const planted = await asNeighbour(
      `mkdir -m 0777 ${inbox} && printf 'out %s\\nend\\n' ${bait} > ${inbox}/job.planted && mkfifo ${inbox}/job.fifo && ln -s /etc/shadow ${inbox}/job.link`,
    );
    expect(planted.code, planted.stderr).toBe(0);
  };
  const startDaemon = async (socket: string): Promise<RunningCachix> => {
    const daemon = startCachix(['daemon', 'run', 'dmnsafe', '--socket', socket], world.env);
    started.push(daemon);
    await daemon.waitForStderr(/listening on/);
    return daemon;
  };
  const firstLine = (text: string): string => text.split('\n')[0]!;

  it('an inbox or socket folder another user made, or can write, is refused before any job is read', async () => {
    // A shared folder like /tmp (1777): the neighbour made the inbox first.
    const shared = await folder(0o1777);
    await plantInbox(join(shared, 'd.sock.inbox'));
    const inShared = await world.run(['daemon', 'run', 'dmnsafe', '--socket', join(shared, 'd.sock')]);
    expect(inShared.code).toBe(1);
    expect(firstLine(inShared.stderr)).toBe(`cachix: the socket's folder ${shared} can be written by other users (mode 1777)`);

    // A folder of ours that was open for a while: the inbox left in it is the neighbour's.
    const own = await folder(0o777);
    await plantInbox(join(own, 'd.sock.inbox'));
    await chmod(own, 0o700);
    const inOwn = await world.run(['daemon', 'run', 'dmnsafe', '--socket', join(own, 'd.sock')]);
    expect(inOwn.code).toBe(1);
    expect(firstLine(inOwn.stderr)).toBe(`cachix: the daemon's inbox ${own}/d.sock.inbox belongs to another user (uid ${user.uid})`);
    expect(existsSync(join(own, 'd.sock'))).toBe(false);

    // An inbox of ours that others can write.
    const writable = await folder(0o700);
    await mkdir(join(writable, 'd.sock.inbox'));
    await chmod(join(writable, 'd.sock.inbox'), 0o733);
    const openInbox = await world.run(['daemon', 'run', 'dmnsafe', '--socket', join(writable, 'd.sock')]);
    expect(openInbox.code).toBe(1);
    expect(firstLine(openInbox.stderr)).toBe(
      `cachix: the daemon's inbox ${writable}/d.sock.inbox can be written by other users (mode 0733)`,
    );

    for (const result of [inShared, inOwn, openInbox]) expect(result.stderr).not.toMatch(/EADDRINUSE|EACCES|at .*\.js/);
    expect(hasNarinfo(cacheDir, bait)).toBe(false);
    expect((await readdir(join(shared, 'd.sock.inbox'))).sort()).toEqual(['job.fifo', 'job.link', 'job.planted']);
  });

  it("the daemon's inbox is 0700: another local user cannot hand it a job", async () => {
    const dir = await folder(0o755);
    const socket = join(dir, 'd.sock');
    const daemon = await startDaemon(socket);
    expect((await stat(`${socket}.inbox`)).mode & 0o7777).toBe(0o700);
    const attempt = await asNeighbour(`printf 'out %s\\nend\\n' ${bait} > ${socket}.inbox/job.theirs`);
    expect(attempt.code).not.toBe(0);
    expect(attempt.stderr).toMatch(/Permission denied/);
    const stopped = await world.run(['daemon', 'stop', '--socket', socket]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((await daemon.done).code).toBe(0);
    expect(hasNarinfo(cacheDir, bait)).toBe(false);
  });

  it('a FIFO, a link or escape sequences in the inbox hold up nothing, and SIGTERM ends the daemon', async () => {
    const dir = await folder(0o700);
    const socket = join(dir, 'd.sock');
    const daemon = await startDaemon(socket);
    const inbox = `${socket}.inbox`;
    // The link points at a job-shaped file of the neighbour's: read through it, the bait would go.
    const theirs = await folder(0o755);
    await writeFile(join(theirs, 'job'), `out ${bait}\nend\n`);
    await chown(join(theirs, 'job'), user.uid, user.uid);
    await symlink(join(theirs, 'job'), join(inbox, 'job.link'));
    expect(spawnSync('mkfifo', [join(inbox, 'job.fifo')]).status).toBe(0);
    const wanted = await buildWithNix('dmnsafe-wanted', 'echo wanted > $out');
    // As Nix runs the hook; the shell splits OUT_PATHS, so the escape sequence arrives as its own line.
    const hook = spawnSync(`${socket}.post-build-hook`, [], {
      env: { PATH, OUT_PATHS: `\x1b[2J\x1b]0;owned\x07 ${wanted}`, DRV_PATH: '' },
    });
    expect(hook.status).toBe(0);
    await waitUntil('the wanted path pushed', () => hasNarinfo(cacheDir, wanted), 30_000);
    await daemon.waitForStderr(/job\.link is a symbolic link; removing it/);
    expect(daemon.stderr()).toContain('post-build-hook job job.fifo is not a regular file; removing it');
    expect(daemon.stderr()).toMatch(/ignoring 'out \\x1b\[2J\\x1b\]0;owned\\x07' \(not a store path\)/);
    expect(daemon.stderr()).not.toContain('\x1b');
    expect(hasNarinfo(cacheDir, bait)).toBe(false);
    await waitUntil('the inbox to empty', async () => (await readdir(inbox)).length === 0, 30_000);

    daemon.kill('SIGTERM');
    const exited = await Promise.race([daemon.done, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000))]);
    expect(exited, daemon.stderr()).not.toBe('hung');
    expect(exited !== 'hung' && exited.code).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('of two daemons started at once on one socket, the second says one is already running', async () => {
    const socket = join(await folder(0o700), 'd.sock');
    const both = [0, 1].map(() => startCachix(['daemon', 'run', 'dmnsafe', '--socket', socket], world.env));
    started.push(...both);
    const loser = await Promise.race(both.map(async (daemon) => ({ daemon, result: await daemon.done })));
    expect(loser.result.code, loser.result.stderr).toBe(1);
    expect(firstLine(loser.result.stderr)).toBe(`cachix: a cachix daemon is already running on ${socket}`);
    expect(loser.result.stderr).not.toContain('EADDRINUSE');
    const winner = both.find((daemon) => daemon !== loser.daemon)!;
    await winner.waitForStderr(/listening on/);
    const stopped = await world.run(['daemon', 'stop', '--socket', socket]);
    expect(stopped.code, stopped.stderr).toBe(0);
  });

  it("a non-root daemon's start-up line advises only a root-owned copy of the hook", async () => {
    const home = await folder(0o755);
    await chown(home, user.uid, user.uid);
    const env = { PATH, HOME: home, XDG_CONFIG_HOME: join(home, 'config'), XDG_DATA_HOME: join(home, 'data'), CI: 'true' };
    const created = await runAs(user.name, env, process.execPath, [CACHIX_BIN, 'create', 'mine']);
    expect(created.code, created.stderr).toBe(0);
    const socket = join(home, 'run', 'd.sock');
    const assignments = Object.entries(env).map(([key, value]) => `${key}=${value}`);
    const child = spawn(
      'runuser',
      ['-u', user.name, '--', 'env', '-i', ...assignments, process.execPath, CACHIX_BIN, 'daemon', 'run', 'mine', '--socket', socket],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const closed = new Promise((resolve) => child.on('close', resolve));
    try {
      await waitUntil('the daemon listening', () => /post-build-hook:/.test(stderr), 30_000);
      const advice = stderr.split('\n').find((line) => line.startsWith('post-build-hook:'))!;
      expect(advice).toBe(
        `post-build-hook: as root, install a copy only root can change: cachix daemon hook-script --socket ${socket} > /etc/nix/cachix-hook; chmod 755 /etc/nix/cachix-hook; then in nix.conf: post-build-hook = /etc/nix/cachix-hook`,
      );
      expect(stderr).not.toContain(`post-build-hook = ${socket}.post-build-hook`);
    } finally {
      const stopped = await runAs(user.name, env, process.execPath, [CACHIX_BIN, 'daemon', 'stop', '--socket', socket]);
      if (stopped.code !== 0) child.kill('SIGKILL');
      await closed;
    }
  });
});
