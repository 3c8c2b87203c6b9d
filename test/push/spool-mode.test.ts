import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMALL_POOL_MIN_PATHS } from '../../src/push/nar/small-window.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder } from '../helpers/cache-files.js';
import { startCachix, waitUntil } from '../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { NIX_FEATURES, requireNix, run } from '../helpers/nix.js';
import { buildChain } from '../reliability/consistency.js';

/*
 * NARs for a remote cache wait in TMPDIR, which other users share (/tmp): what a private cache
 * holds must not be readable there. Each way a NAR is spooled is caught while its upload is held
 * back by a proxy: small NARs compressed in memory on the worker pool and on the main thread, a
 * big one through zstd (spoolDirect), and xz (a stream pipeline, for any size). NARs spooled inside a file cache become the
 * cache's files and keep the mode any new file gets there.
 */

let nginx: RunningNginx;
let proxy: FaultProxy;
let world: CachixEnv;
let sharedTmp: string;
let big: string;
let small: string[];

/** Store paths made by builtins.toFile: small, no build needed. */
async function smallPaths(count: number): Promise<string[]> {
  const salt = `spool-mode-${process.pid}-${Date.now()}`;
  const expression = `builtins.genList (i: builtins.toFile "spool-small-\${toString i}" "${salt} \${toString i}\\n") ${count}`;
  return JSON.parse(
    await run('nix-instantiate', [...NIX_FEATURES, '--eval', '--strict', '--json', '--read-write-mode', '-E', expression]),
  ) as string[];
}

beforeAll(async () => {
  requireNix();
  [nginx, world, sharedTmp] = await Promise.all([startNginx(), makeCachixEnv(), mkdtemp(join(tmpdir(), 'cachix-shared-tmp-'))]);
  await chmod(sharedTmp, 0o1777);
  proxy = await startFaultProxy(nginx.url);
  // Every NAR upload waits until the test ends, so its spool file stays in TMPDIR to be looked at.
  proxy.addRule({ method: 'PUT', path: '/held/nar/', times: Number.MAX_SAFE_INTEGER, action: { kind: 'delay', ms: 10 * 60_000 } });
  [[big], small] = await Promise.all([buildChain('spool-mode', 1, 2), smallPaths(SMALL_POOL_MIN_PATHS + 2)]);
  expectOk(await world.create('held', `${proxy.url}/held`), 'create');
});
afterAll(async () => {
  await Promise.all([proxy?.stop(), nginx?.stop(), world?.cleanup(), rm(sharedTmp, { recursive: true, force: true })]);
});

/** Pushes with TMPDIR=sharedTmp until a small NAR (and the big one, when asked) is spooled; their modes, then the push is stopped. */
async function spooledModes(args: string[], withBig: boolean): Promise<Array<{ size: number; mode: number }>> {
  const push = startCachix(['push', 'held', ...args], { ...world.env, TMPDIR: sharedTmp });
  let ended: string | undefined;
  void push.done.then((result) => (ended = `exit ${result.code} (${result.signal}):\n${result.stderr}`));
  try {
    let spooled: Array<{ size: number; mode: number }> = [];
    await waitUntil(`a small NAR${withBig ? ' and the big one' : ''} spooled in TMPDIR`, async () => {
      if (ended !== undefined) throw new Error(`the push ended before its NARs were held back: ${ended}`);
      const names = (await readdir(sharedTmp)).filter((name) => name.includes('.nar'));
      const stats = await Promise.all(names.map((name) => stat(join(sharedTmp, name)).catch(() => undefined)));
      spooled = stats.flatMap((entry) => (entry ? [{ size: entry.size, mode: entry.mode & 0o777 }] : []));
      return (!withBig || spooled.some((file) => file.size > 1_000_000)) && spooled.some((file) => file.size > 0 && file.size < 4096);
    });
    return spooled;
  } finally {
    push.kill('SIGTERM');
    await push.done;
  }
}

describe('spool files in a shared TMPDIR are 0600', () => {
  it('zstd: the big NAR streamed, the small ones compressed in memory on the main thread', async () => {
    const modes = await spooledModes(['-m', 'zstd', big!, small[0]!, small[1]!], true);
    expect(modes.map((file) => file.mode.toString(8))).toEqual(modes.map(() => '600'));
  });

  it('zstd: the small ones on the worker pool', async () => {
    const modes = await spooledModes(['-m', 'zstd', ...small], false);
    expect(modes.map((file) => file.mode.toString(8))).toEqual(modes.map(() => '600'));
  });

  it('xz: every NAR through the stream pipeline', async () => {
    const modes = await spooledModes(['-m', 'xz', big!, small[0]!], true);
    expect(modes.map((file) => file.mode.toString(8))).toEqual(modes.map(() => '600'));
  });

  it('a file cache: its NARs are spooled in place and keep the mode new files get there', async () => {
    const cacheDir = join(world.home, 'file-cache');
    expectOk(await world.create('local', `file://${cacheDir}`), 'create');
    expectOk(await world.run(['push', 'local', big!, ...small]), 'push');
    const nars = (await filesUnder(cacheDir)).filter((file) => file.name.startsWith('nar/'));
    expect(nars.length).toBe(small.length + 1);
    const umask = process.umask();
    for (const nar of nars) expect(((await stat(join(cacheDir, nar.name))).mode & 0o777).toString(8)).toBe((0o666 & ~umask).toString(8));
  });
});
