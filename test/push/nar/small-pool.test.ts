import { existsSync } from 'node:fs';
import { appendFile, chmod, readdir, readFile, rm, stat, truncate, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress } from 'zstd-napi';
import { parseNarInfo } from '../../../src/nix/narinfo.js';
import { SMALL_POOL_MIN_PATHS } from '../../../src/push/nar/small-window.js';
import { makeCachixEnv, expectOk, type CachixEnv } from '../../helpers/cachix-env.js';
import { NIX_FEATURES, NO_SUBSTITUTERS, nixClosure, nixDump, requireNix, retryKilledBuild, run, hashOf } from '../../helpers/nix.js';
import { substituteIntoFreshStore } from '../../helpers/substitute.js';
import { mountSmallTmpfs } from '../../helpers/tmpfs.js';
import { hasNarinfo } from '../../helpers/cache-files.js';

const SMALL_PATHS = SMALL_POOL_MIN_PATHS + 40;

/**
 * SMALL_PATHS fresh one-file paths (builtins.toFile) and a derivation referring to all of them.
 * Two calls with the same `salt` and another `name` give twins: other store paths, the same NARs.
 */
async function buildManySmall(tag: string, twin?: { salt: string; name: string }): Promise<{ top: string; small: string[] }> {
  requireNix();
  const dir = await mkdtemp(join(tmpdir(), 'cachix-pool-'));
  const salt = twin?.salt ?? `${tag}-${process.pid}-${Date.now()}-${Math.random()}`;
  const name = twin?.name ?? 'pool-small';
  const expression = `let
  small = builtins.genList (i: builtins.toFile "${name}-\${toString i}" "${salt} \${toString i}\\n") ${SMALL_PATHS};
in derivation {
  name = "pool-top-${tag}";
  system = builtins.currentSystem;
  preferLocalBuild = true;
  builder = "/bin/bash";
  args = [ "-c" "export PATH=/bin:/usr/bin; mkdir $out; echo $smallPaths > $out/list; :" ];
  smallPaths = small;
}`;
  const file = join(dir, 'default.nix');
  await writeFile(file, expression);
  const top = (await retryKilledBuild(() => run('nix-build', [file, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS])))
    .trim()
    .split('\n')
    .pop()!;
  await rm(dir, { recursive: true, force: true });
  const small = (await readFile(join(top, 'list'), 'utf8')).trim().split(' ');
  return { top, small };
}

describe('many small paths go through the worker pool', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
  });
  afterAll(async () => world.cleanup());

  it('every NAR equals the dump of its path, and real Nix substitutes the closure with signatures required', async () => {
    const { top } = await buildManySmall('ok');
    const publicKey = expectOk(await world.create('many'), 'create').stdout.trim();
    const pushed = expectOk(await world.run(['push', 'many', top]), 'push');
    expect(pushed.stderr).toMatch(new RegExp(`pushed ${SMALL_PATHS + 1} paths .* skipped 0`));
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'many');
    const closure = await nixClosure(top);
    expect(closure).toHaveLength(SMALL_PATHS + 1);
    for (const path of closure) {
      const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hashOf(path)}.narinfo`), 'utf8'));
      expect(narInfo.storePath).toBe(path);
      const stored = await readFile(join(cacheDir, narInfo.url));
      expect(stored.length).toBe(narInfo.fileSize);
      expect(decompress(stored).equals(await nixDump(path))).toBe(true);
    }
    expect((await readdir(join(cacheDir, 'nar'))).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
    const fresh = await substituteIntoFreshStore(top, `file://${cacheDir}`, publicKey);
    expect(fresh.stderr).toBe('');
    expect(fresh.ok).toBe(true);
    await rm(fresh.root, { recursive: true, force: true });
  });

  it('no NAR is larger than the one nix copy writes at the same method and level', async () => {
    const { top } = await buildManySmall('size');
    expectOk(await world.create('sizes'), 'create');
    expectOk(await world.run(['push', 'sizes', top, '-m', 'zstd', '-l', '3']), 'push');
    const ours = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'sizes');
    const theirs = join(world.home, 'nix-copy');
    await run('nix', [...NIX_FEATURES, 'copy', '--to', `file://${theirs}?compression=zstd&compression-level=3`, top, ...NO_SUBSTITUTERS]);
    let larger = 0;
    for (const path of await nixClosure(top)) {
      const fileSize = async (root: string) => parseNarInfo(await readFile(join(root, `${hashOf(path)}.narinfo`), 'utf8')).fileSize!;
      if ((await fileSize(ours)) > (await fileSize(theirs))) larger++;
    }
    expect(larger).toBe(0);
  });

  it('a corrupted path among them is named, and neither it nor what refers to it reaches the cache', async () => {
    const { top, small } = await buildManySmall('corrupt');
    const victim = small[Math.floor(SMALL_PATHS / 2)]!;
    expectOk(await world.create('guarded'), 'create');
    await chmod(victim, 0o644);
    await appendFile(victim, 'tampered\n');
    try {
      const result = await world.run(['push', 'guarded', top]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(victim);
      expect(result.stderr).toContain('nix-store --verify-path');
      expect(result.stderr).not.toMatch(/\n\s+at /);
      const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'guarded');
      const entries = await readdir(cacheDir);
      expect(entries).not.toContain(`${hashOf(victim)}.narinfo`);
      expect(entries).not.toContain(`${hashOf(top)}.narinfo`);
      expect((await readdir(join(cacheDir, 'nar'))).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
    } finally {
      await run('nix-store', ['--delete', top]).catch(() => undefined);
      await run('nix-store', ['--delete', victim]).catch(() => undefined);
    }
  });
  it('a failed push leaves the NARs its workers already placed: a narinfo of another push may name them', async () => {
    const salt = `twins-${process.pid}-${Date.now()}-${Math.random()}`;
    const first = await buildManySmall('twin-a', { salt, name: 'pool-twin-a' });
    const second = await buildManySmall('twin-b', { salt, name: 'pool-twin-b' });
    const victim = second.small[Math.floor(SMALL_PATHS / 2)]!;
    expectOk(await world.create('twins'), 'create');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'twins');
    try {
      expectOk(await world.run(['push', 'twins', first.top]), 'first push');
      await chmod(victim, 0o644);
      await appendFile(victim, 'tampered\n');
      // One upload at a time: the workers' NARs (the twins' very NAR files) wait placed, unsent, when the victim fails.
      const result = await world.run(['push', '-j', '1', 'twins', second.top]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(victim);
      const dangling: string[] = [];
      for (const path of first.small) {
        const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hashOf(path)}.narinfo`), 'utf8'));
        if (!existsSync(join(cacheDir, narInfo.url))) dangling.push(path);
      }
      expect(dangling).toEqual([]);
      // The second push stopped with twins prepared and not uploaded: the case above is real.
      const secondPushed = second.small.filter((path) => hasNarinfo(cacheDir, path));
      expect(secondPushed.length).toBeLessThan(SMALL_PATHS - 1);
    } finally {
      await run('nix-store', ['--delete', first.top, second.top, ...first.small, ...second.small]).catch(() => undefined);
    }
    // Two builds of SMALL_PATHS paths and two pushes: more than the default on a loaded machine.
  }, 400_000);

  it('a worker whose spool write fails (disk full) removes its spool file', async () => {
    const { top, small } = await buildManySmall('full');
    const disk = await mountSmallTmpfs('1m');
    try {
      const root = join(disk.dir, 'cache');
      expectOk(await world.create('fulldisk', pathToFileURL(root).href), 'create');
      // Fill every block, then free room for a few NARs only: the workers run out of space part-way.
      const filler = join(disk.dir, 'filler');
      await expect(writeFile(filler, Buffer.alloc(2 << 20, 1))).rejects.toThrow('ENOSPC');
      await truncate(filler, (await stat(filler)).size - 10 * 4096);
      const result = await world.run(['push', 'fulldisk', top]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('no space left on the device');
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect((await readdir(join(root, 'nar'))).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
    } finally {
      await disk.cleanup();
      await run('nix-store', ['--delete', top, ...small]).catch(() => undefined);
    }
  });
});
