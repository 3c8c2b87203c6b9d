import { existsSync } from 'node:fs';
import { chmod, chown, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CachixEnv, type LocalCache, expectOk, makeLocalCache } from '../helpers/cachix-env.js';
import { residentBytes, startCachix, waitUntil, type RunningCachix } from '../helpers/daemon.js';
import { KEEP_BUILDER_LOG_OPEN, NO_SUBSTITUTERS, requireNix, run, hashOf } from '../helpers/nix.js';
import { createTestUser } from '../helpers/nix-user.js';
import { substituteThenDiscard } from '../helpers/substitute.js';
import { buildChain, checkCacheConsistent, directoryCache } from '../reliability/consistency.js';
import { hasNarinfo } from '../helpers/cache-files.js';

const salted = (): string => `${process.pid}-${Date.now()}-${Math.random()}`;

/** A Nix file of `count` independent derivations named `<prefix>-<i>`, each sleeping `seconds`. */
async function writeMany(dir: string, prefix: string, count: number, seconds: number): Promise<string> {
  const file = join(dir, `${prefix}.nix`);
  await writeFile(
    file,
    `{ salt }: builtins.genList (i: derivation { name = "${prefix}-\${toString i}"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh";
  args = [ "-c" "PATH=/bin:/usr/bin; sleep ${seconds}; echo \${toString i} > $out; ${KEEP_BUILDER_LOG_OPEN}" ]; inherit salt; }) ${count}`,
  );
  return file;
}

async function nixBuild(file: string, salt: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const out = await run('nix-build', [file, '--argstr', 'salt', salt, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS], { env });
  return out.trim().split('\n');
}

describe('cachix daemon', () => {
  let world: CachixEnv;
  let work: string;
  let cacheDir: string;
  let socket: string;
  let publicKey: string;

  let local: LocalCache;

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('dmn');
    ({ world, work, cacheDir } = local);
    publicKey = local.created.stdout.trim();
    socket = join(world.home, 'run', 'cachix-daemon.sock');
  });
  const started: RunningCachix[] = [];
  // A failed test must not leave its daemon holding the socket for the next one.
  afterEach(async () => {
    for (const daemon of started.splice(0)) {
      daemon.kill('SIGKILL');
      await daemon.done;
    }
  });
  afterAll(() => local.cleanup());

  const startDaemon = async (extra: string[] = []): Promise<RunningCachix> => {
    const daemon = startCachix(['daemon', 'run', 'dmn', '--socket', socket, ...extra], world.env);
    started.push(daemon);
    await daemon.waitForStderr(/listening on/);
    return daemon;
  };

  it('push --wait pushes closures; stop drains, prints the totals and exits 0; the socket is 0600', async () => {
    const [daemon, [first, second], [excluded]] = await Promise.all([
      startDaemon(['--exclude', '^dmn-excluded-']),
      nixBuild(await writeMany(work, 'dmn-basic', 2, 0), salted()),
      nixBuild(await writeMany(work, 'dmn-excluded', 1, 0), salted()),
    ]);
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
    expect((await stat(join(world.home, 'run'))).mode & 0o777).toBe(0o700);
    const pushed = await world.run(['daemon', 'push', '--socket', socket, '--wait', first!, second!, excluded!]);
    expect(pushed.code, pushed.stderr).toBe(0);
    // --wait returned: everything is already there.
    expect(hasNarinfo(cacheDir, first!) && hasNarinfo(cacheDir, second!)).toBe(true);
    expect(hasNarinfo(cacheDir, excluded!)).toBe(false);
    const stopped = await world.run(['daemon', 'stop', '--socket', socket]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/pushed 2 paths .*not pushed: 1 path .* matched --exclude/);
    const exited = await daemon.done;
    expect(exited.code, exited.stderr).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('a second daemon on a live socket is refused; a dead one is taken over', async () => {
    const daemon = await startDaemon();
    const second = await world.run(['daemon', 'run', 'dmn', '--socket', socket]);
    expect(second.code).toBe(1);
    expect(second.stderr.split('\n')[0]).toBe(`cachix: a cachix daemon is already running on ${socket}`);
    daemon.kill('SIGKILL');
    await daemon.done;
    expect(existsSync(socket)).toBe(true); // left behind by the killed daemon
    const [built] = await nixBuild(await writeMany(work, 'dmn-dead', 1, 0), salted());
    const pushToDead = await world.run(['daemon', 'push', '--socket', socket, built!]);
    expect(pushToDead.code).toBe(1);
    expect(pushToDead.stderr.split('\n')[0]).toBe(
      `cachix: no cachix daemon is running on ${socket} (its socket is left from one that stopped)`,
    );
    const next = await startDaemon();
    expect(next.stderr()).toContain(`taking over ${socket}: the daemon that made it is gone`);
    expectOk(await world.run(['daemon', 'stop', '--socket', socket]), 'stop');
    expect((await next.done).code).toBe(0);
  });

  it('bad input is one line each, and nothing is lost', async () => {
    const [[path], user] = await Promise.all([nixBuild(await writeMany(work, 'dmn-bad', 1, 0), salted()), createTestUser()]);
    const nobody = join(work, 'nobody.sock');
    const notASocket = join(work, 'regular-file');
    await writeFile(notASocket, 'mine, not a socket');
    const theirs = join(work, 'theirs.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(theirs, resolve));
    await chown(theirs, user.uid, user.uid);
    // Each is its own process and touches nothing the others do: run side by side.
    const cases: { args: string[]; firstLine: string | RegExp }[] = [
      {
        args: ['daemon', 'push', '--socket', nobody, '/nix/store/00000000000000000000000000000000-x'],
        firstLine: /^cachix: .*00000000000000000000000000000000-x is not a valid path in the Nix store$/,
      },
      { args: ['daemon', 'push', '--socket', nobody, path!], firstLine: `cachix: no cachix daemon is running on ${nobody}` },
      { args: ['daemon', 'run', 'dmn', '--socket', notASocket], firstLine: `cachix: ${notASocket} exists and is not a socket` },
      { args: ['daemon', 'push', '--socket', notASocket, path!], firstLine: `cachix: ${notASocket} exists and is not a socket` },
      { args: ['daemon', 'run', 'dmn', '--socket', theirs], firstLine: `cachix: ${theirs} belongs to another user (uid ${user.uid})` },
      { args: ['daemon', 'push', '--socket', theirs, path!], firstLine: `cachix: ${theirs} belongs to another user (uid ${user.uid})` },
      {
        args: ['daemon', 'push', '--socket', socket, '/etc/passwd'],
        firstLine: "cachix: '/etc/passwd' is not a store path (it is /etc/passwd)",
      },
    ];
    try {
      // No substituters: Nix asked about the missing path would otherwise try cache.nixos.org (seconds offline).
      const results = await Promise.all(cases.map((each) => world.run(each.args, { env: { NIX_CONFIG: 'substituters =' } })));
      results.forEach((result, index) => {
        const { args, firstLine } = cases[index]!;
        expect(result.code, args.join(' ')).toBe(1);
        if (typeof firstLine === 'string') expect(result.stderr.split('\n')[0], args.join(' ')).toBe(firstLine);
        else expect(result.stderr.split('\n')[0], args.join(' ')).toMatch(firstLine);
      });
      expect(results[1]!.stderr).toMatch(/start one: cachix daemon run CACHE/);
    } finally {
      server.close();
      await user.remove();
    }
    expect(await readFile(notASocket, 'utf8')).toBe('mine, not a socket');

    // The hook run by hand, without what Nix sets: one line, exit 0 (a failing hook would fail the build).
    const daemon = await startDaemon();
    const script = `${socket}.post-build-hook`;
    const hook = await runHook(script, { OUT_PATHS: '', DRV_PATH: '' });
    expect(hook.code).toBe(0);
    expect(hook.stderr.trim().split('\n')).toEqual([
      'cachix post-build-hook: neither DRV_PATH nor OUT_PATHS is set (not run by Nix?); nothing handed to the daemon',
    ]);
    const nodeHook = await world.run(['daemon', 'post-build-hook', '--socket', socket], { env: { OUT_PATHS: '', DRV_PATH: '' } });
    expect(nodeHook.code).toBe(1);
    expect(nodeHook.stderr.split('\n')[0]).toBe('cachix: neither DRV_PATH nor OUT_PATHS is set: nothing to hand to the daemon');
    // A hook naming a path that is not in the store: the daemon says so in one line and goes on.
    await runHook(script, { OUT_PATHS: '/nix/store/00000000000000000000000000000000-gone', DRV_PATH: '' });
    await daemon.waitForStderr(/not pushing \/nix\/store\/00000000000000000000000000000000-gone: not a valid path in the Nix store/);
    expectOk(await world.run(['daemon', 'stop', '--socket', socket]), 'stop');
    expect((await daemon.done).code).toBe(0);
  });

  it('SIGKILL mid-push leaves the cache consistent; the next daemon pushes what was left', async () => {
    const [chain, daemon] = await Promise.all([buildChain(`dmn-kill-${salted()}`, 4, 8), startDaemon(['-j', '1'])]);
    const top = chain[chain.length - 1]!;
    await runHook(`${socket}.post-build-hook`, { OUT_PATHS: top, DRV_PATH: '' });
    await waitUntil('the first narinfo', async () =>
      (await readdir(cacheDir)).some((name) => chain.some((p) => name === `${hashOf(p)}.narinfo`)),
    );
    daemon.kill('SIGKILL');
    await daemon.done;
    const files = directoryCache(cacheDir);
    const afterKill = await checkCacheConsistent(files.listNarinfos, files.read);
    expect(afterKill.problems).toEqual([]);
    const left = chain.filter((path) => !hasNarinfo(cacheDir, path));
    expect(left.length).toBeGreaterThan(0);
    // The hook's job is still in the inbox: the next daemon takes it without being asked.
    expect((await readdir(`${socket}.inbox`)).filter((name) => name.startsWith('job.'))).toHaveLength(1);
    const next = await startDaemon();
    const asked = await world.run(['daemon', 'push', '--socket', socket, '--wait', top]);
    expect(asked.code, asked.stderr).toBe(0);
    for (const path of chain) expect(hasNarinfo(cacheDir, path)).toBe(true);
    // The cache is complete once --wait returned: Nix substitutes from it while the daemon stops.
    const [stopped, substituted] = await Promise.all([
      world.run(['daemon', 'stop', '--socket', socket]),
      substituteThenDiscard(top, `file://${cacheDir}`, publicKey),
    ]);
    expectOk(stopped, 'stop');
    expect(substituted.ok, substituted.stderr).toBe(true);
    expect((await next.done).code).toBe(0);
    expect((await readdir(`${socket}.inbox`)).filter((name) => name.startsWith('job.'))).toEqual([]);
    expect((await checkCacheConsistent(files.listNarinfos, files.read)).problems).toEqual([]);
  });

  it('with the hook, a build is pushed while Nix is still building; memory stays flat over 500 hook jobs', async () => {
    const script = `${socket}.post-build-hook`;
    const daemon = await startDaemon();
    // Nix's builders (nixbld users) look into the cache for the first output's narinfo.
    for (let dir = cacheDir; dir.startsWith(world.home); dir = dirname(dir)) await chmod(dir, 0o755);
    const file = join(work, 'dmn-while.nix');
    // The second derivation is built after the first (it depends on it), and Nix runs the hook for
    // the first before starting it: its builder waits (up to 60 s) for the first's narinfo, so
    // "pushed while Nix builds" is an event the build itself sees, not a race against the clock.
    await writeFile(
      file,
      `{ salt }: let first = derivation { name = "dmn-while-first"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; inherit salt;
  args = [ "-c" "echo first > $out; ${KEEP_BUILDER_LOG_OPEN}" ]; };
in [ first (derivation { name = "dmn-while-second"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; inherit first salt;
  args = [ "-c" "PATH=/bin:/usr/bin; h=$(basename $first | cut -c1-32); i=0; while [ ! -e ${cacheDir}/$h.narinfo ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; if [ -e ${cacheDir}/$h.narinfo ]; then echo pushed > $out; else echo not-pushed > $out; fi; ${KEEP_BUILDER_LOG_OPEN}" ]; }) ]`,
    );
    const outputs = await nixBuild(file, salted(), { ...process.env, NIX_CONFIG: `substituters =\npost-build-hook = ${script}` });
    expect(outputs).toHaveLength(2);
    expect((await readFile(outputs[1]!, 'utf8')).trim()).toBe('pushed');

    // 500 hook jobs as the hook writes them (DRV_PATH only: Nix 2.8), for the builds above;
    // written here rather than by 500 runs of the script, whose own output the tests above check.
    const drvs = await Promise.all(outputs.map(async (path) => (await run('nix-store', ['--query', '--deriver', path])).trim()));
    const inbox = `${socket}.inbox`;
    let written = 0;
    const handJobs = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++, written++) {
        const name = `test.${written}`;
        await writeFile(join(inbox, `.new.${name}`), `drv ${drvs[written % drvs.length]}\nend\n`);
        await rename(join(inbox, `.new.${name}`), join(inbox, `job.${name}`));
      }
      await waitUntil(
        'the inbox to empty',
        async () => (await readdir(inbox)).filter((name) => name.startsWith('job.')).length === 0,
        120_000,
      );
    };
    await handJobs(100);
    const warm = await residentBytes(daemon.pid);
    await handJobs(400);
    const after = await residentBytes(daemon.pid);
    console.log(`daemon RSS: ${(warm / 2 ** 20).toFixed(1)} MiB after 100 hook jobs, ${(after / 2 ** 20).toFixed(1)} MiB after 500`);
    expect(after - warm).toBeLessThan(16 * 2 ** 20);
    expect(outputs.every((path) => hasNarinfo(cacheDir, path))).toBe(true);
    expectOk(await world.run(['daemon', 'stop', '--socket', socket]), 'stop');
    expect((await daemon.done).code).toBe(0);
  });
});

async function runHook(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(script, [], { env: { PATH: '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
