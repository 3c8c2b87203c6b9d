import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { makeCachixEnv, expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { startCachix, type RunningCachix } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { KEEP_BUILDER_LOG_OPEN, buildWithNix, nixClosure, requireNix, run, hashOf } from '../helpers/nix.js';
import { waitUntil } from '../helpers/wait.js';
import { hasNarinfo } from '../helpers/cache-files.js';

// This machine cannot reach cache.nixos.org; without this every nix-build waits ~4 s for it.
process.env.NIX_CONFIG ??= 'substituters =';

/** One nix-build of `count` derivations, each writing `bytes` random bytes: many paths at once. */
async function buildMany(tag: string, count: number, bytes: number): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'cachix-watch-many-'));
  const salt = `${tag}-${process.pid}-${Date.now()}-${Math.random()}`;
  await writeFile(
    join(dir, 'many.nix'),
    `builtins.genList (n: derivation {
    name = "${tag}-\${toString n}"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh";
    args = [ "-c" "/usr/bin/head -c ${bytes} /dev/urandom > $out; ${KEEP_BUILDER_LOG_OPEN}" ]; salt = "${salt}"; }) ${count}`,
  );
  const outputs = (await run('nix-build', [join(dir, 'many.nix'), '--no-out-link', '--quiet'])).trim().split('\n');
  await rm(dir, { recursive: true });
  if (outputs.length !== count) throw new Error(`nix-build made ${outputs.length} paths, not ${count}`);
  return outputs;
}

/** The narinfo is written last: when it is there, its NAR must be there and complete. */
async function expectPushed(cacheDir: string, path: string): Promise<void> {
  const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hashOf(path)}.narinfo`), 'utf8'));
  expect(narInfo.storePath).toBe(path);
  expect((await stat(join(cacheDir, narInfo.url))).size).toBe(narInfo.fileSize);
}

describe('cachix watch-store on a local file cache', () => {
  let world: CachixEnv;
  let watcher: RunningCachix | undefined;
  const cacheDir = (name: string): string => join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', name);

  beforeAll(async () => {
    requireNix();
    world = await makeCachixEnv();
    for (const name of ['watched', 'drained', 'stopped']) expectOk(await world.create(name), `cachix create ${name}`);
  });
  afterEach(() => {
    if (watcher?.child.exitCode === null) watcher.child.kill('SIGKILL');
    watcher = undefined;
  });
  afterAll(async () => world.cleanup());

  it('pushes what nix-build builds, with its closure, and stops cleanly on SIGTERM', async () => {
    watcher = startCachix(['watch-store', 'watched'], world.env);
    await watcher.waitForStderr(/watching \/nix\/store for new paths, pushing to watched/);
    const dep = await buildWithNix('ws-dep', 'echo dep > $out');
    const top = await buildWithNix('ws-top', 'mkdir -p $out/bin; echo "#!/bin/sh" > $out/bin/run; echo $dep0 >> $out/bin/run', {
      deps: [dep],
    });
    const other = await buildWithNix('ws-other', 'echo other > $out');
    const expected = [...(await nixClosure(top)), other];
    await waitUntil('narinfos of every built path', () => expected.every((path) => hasNarinfo(cacheDir('watched'), path)), {
      timeoutMs: 30_000,
      details: watcher.stderr,
    });
    for (const path of expected) await expectPushed(cacheDir('watched'), path);
    expect(watcher.stderr()).toContain(`pushed ${top}`);

    watcher.child.kill('SIGTERM');
    expect(await watcher.exitCode).toBe(0);
    expect(watcher.stderr()).toMatch(/^pushed \d+ paths \(\d+(\.\d)? [KMG]?i?B\)$/m);
    expect((await readdir(cacheDir('watched'))).filter((name) => name.endsWith('.narinfo')).length).toBeGreaterThanOrEqual(3);
  });

  it('--quiet: stderr holds only the closing summary line', async () => {
    watcher = startCachix(['watch-store', 'watched', '--quiet'], world.env);
    // Nothing is said when it starts: builds go on until one of them is pushed, so the watch is up.
    const probes: string[] = [];
    await waitUntil(
      'the quiet watcher to push a build',
      async () =>
        probes.some((path) => hasNarinfo(cacheDir('watched'), path)) ||
        void probes.push(await buildWithNix('ws-quiet', 'echo quiet > $out')),
      { timeoutMs: 60_000, intervalMs: 500, details: watcher.stderr },
    );
    watcher.child.kill('SIGTERM');
    expect(await watcher.exitCode).toBe(0);
    expect(watcher.stderr()).toMatch(/^pushed \d+ paths \(\d+(\.\d)? [KMG]?i?B\)\n$/);
  });

  it('on SIGTERM during a bigger push, finishes everything queued and exits 0', async () => {
    // xz (about a second per path here), one path at a time: slow enough that the signal lands
    // while the queue is still full.
    const DRAINED = 10;
    watcher = startCachix(['watch-store', 'drained', '-m', 'xz', '-l', '0', '-j', '1'], world.env);
    await watcher.waitForStderr(/watching/);
    const outputs = await buildMany('ws-drain', DRAINED, 2_500_000);
    await delay(1_000); // the last unlock events reach the watcher
    await waitUntil('the first pushed path', () => outputs.some((path) => hasNarinfo(cacheDir('drained'), path)), {
      timeoutMs: 30_000,
      details: watcher.stderr,
    });
    const pushedBeforeSignal = outputs.filter((path) => hasNarinfo(cacheDir('drained'), path)).length;
    expect(pushedBeforeSignal).toBeLessThan(DRAINED);

    watcher.child.kill('SIGTERM');
    expect(await watcher.exitCode).toBe(0);
    expect(watcher.stderr()).toMatch(/SIGTERM: finishing \d+ queued paths \(send SIGTERM again to stop at once\)/);
    for (const path of outputs) await expectPushed(cacheDir('drained'), path);
    // Other builds on this machine may land in the same cache meanwhile: at least ours.
    expect(Number(/^pushed (\d+) paths/m.exec(watcher.stderr())?.[1])).toBeGreaterThanOrEqual(DRAINED);
    console.log(`watch-store drain: ${pushedBeforeSignal}/${DRAINED} pushed when SIGTERM came, ${DRAINED}/${DRAINED} after`);
  });

  it('a second SIGINT stops at once with 130 and says how many paths were left', async () => {
    watcher = startCachix(['watch-store', 'stopped', '-m', 'xz', '-l', '0', '-j', '1'], world.env);
    await watcher.waitForStderr(/watching/);
    const outputs = await buildMany('ws-stop', 8, 2_500_000);
    await delay(1_000);
    await waitUntil('the first pushed path', () => outputs.some((path) => hasNarinfo(cacheDir('stopped'), path)), {
      timeoutMs: 30_000,
      details: watcher.stderr,
    });
    watcher.child.kill('SIGINT');
    await watcher.waitForStderr(/SIGINT: finishing/);
    watcher.child.kill('SIGINT');
    expect(await watcher.exitCode).toBe(130);
    const left = /SIGINT again: stopping now; (\d+) paths were left unpushed/.exec(watcher.stderr());
    expect(left).not.toBeNull();
    const pushed = outputs.filter((path) => hasNarinfo(cacheDir('stopped'), path)).length;
    expect(Number(left![1])).toBeGreaterThan(0);
    expect(pushed).toBeLessThan(8);
  });
});

describe('cachix watch-store on nginx (HTTP PUT)', () => {
  let world: CachixEnv;
  let nginx: RunningNginx;
  let watcher: RunningCachix | undefined;

  beforeAll(async () => {
    requireNix();
    world = await makeCachixEnv();
    nginx = await startNginx();
    expectOk(await world.create('web', `${nginx.url}/`), 'cachix create --url http://');
  });
  afterAll(async () => {
    if (watcher?.child.exitCode === null) watcher.child.kill('SIGKILL');
    await nginx.stop();
    await world.cleanup();
  });

  it('pushes new builds over HTTP, which real Nix can then read back', async () => {
    watcher = startCachix(['watch-store', 'web'], world.env);
    await watcher.waitForStderr(/watching \/nix\/store for new paths, pushing to web/);
    const dep = await buildWithNix('ws-http-dep', 'echo dep > $out');
    const top = await buildWithNix('ws-http-top', 'echo $dep0 > $out', { deps: [dep] });
    await waitUntil('narinfos on nginx', () => [top, dep].every((path) => hasNarinfo(nginx.root, path)), {
      timeoutMs: 30_000,
      details: watcher.stderr,
    });
    for (const path of [top, dep]) await expectPushed(nginx.root, path);
    // Nix itself agrees the cache serves the path: it reads the narinfo over HTTP.
    const info = await run('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--store', nginx.url, top]);
    expect(info.trim()).toBe(top);
    watcher.child.kill('SIGTERM');
    expect(await watcher.exitCode).toBe(0);
  });
});
