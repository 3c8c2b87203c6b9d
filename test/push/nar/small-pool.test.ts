import { appendFile, chmod, readdir, readFile, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress } from 'zstd-napi';
import { parseNarInfo } from '../../../src/nix/narinfo.js';
import { SMALL_POOL_MIN_PATHS } from '../../../src/push/nar/small-window.js';
import { makeCachixEnv, expectOk, type CachixEnv } from '../../helpers/cachix-env.js';
import { NIX_FEATURES, NO_SUBSTITUTERS, nixClosure, nixDump, requireNix, retryKilledBuild, run, hashOf } from '../../helpers/nix.js';
import { substituteIntoFreshStore } from '../../helpers/substitute.js';

const SMALL_PATHS = SMALL_POOL_MIN_PATHS + 40;

/** SMALL_PATHS fresh one-file paths (builtins.toFile) and a derivation referring to all of them. */
async function buildManySmall(tag: string): Promise<{ top: string; small: string[] }> {
  requireNix();
  const dir = await mkdtemp(join(tmpdir(), 'cachix-pool-'));
  const salt = `${tag}-${process.pid}-${Date.now()}-${Math.random()}`;
  const expression = `let
  small = builtins.genList (i: builtins.toFile "pool-small-\${toString i}" "${salt} \${toString i}\\n") ${SMALL_PATHS};
in derivation {
  name = "pool-top-${tag}";
  system = builtins.currentSystem;
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
    const publicKey = expectOk(await world.run(['create', 'many']), 'create').stdout.trim();
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
    expectOk(await world.run(['create', 'sizes']), 'create');
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
    expectOk(await world.run(['create', 'guarded']), 'create');
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
});
