import { readdir, readFile, appendFile, chmod, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { makeCachixEnv, expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { substituteIntoFreshStore } from '../helpers/substitute.js';
import { buildTestClosure, buildWithNix, NIX_FEATURES, nixClosure, nixDump, run } from '../helpers/nix.js';
import { spawnSync } from 'node:child_process';
import { decompress } from 'zstd-napi';
import { startCachix } from '../helpers/cli.js';
import { makeHolds } from '../helpers/hold.js';
import { waitUntil } from '../helpers/wait.js';

/** 3000 files of 400 bytes in one path: more than 1 MiB of NAR (streamed) in many small entries. */
const MANY_SMALL_FILES = `mkdir $out; awk 'BEGIN { for (i = 1; i <= 3000; i++) { f = ENVIRON["out"] "/f" i; printf "%400s", i > f; close(f) } }'`;

describe('create, push to a local file cache, substitute with real Nix', () => {
  let world: CachixEnv;
  let closure: { top: string; lib: string; data: string };
  let publicKey: string;
  let cacheDir: string;

  beforeAll(async () => {
    world = await makeCachixEnv();
    closure = await buildTestClosure('push-e2e');
    const created = expectOk(await world.run(['create', 'e2e']), 'cachix create');
    publicKey = created.stdout.trim();
    cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'e2e');
  });
  afterAll(async () => world.cleanup());

  it('create writes nix-cache-info, a 0600 config with the key, and prints the public key', async () => {
    expect(publicKey).toMatch(/^e2e-1:[A-Za-z0-9+/]{43}=$/);
    expect(await readFile(join(cacheDir, 'nix-cache-info'), 'utf8')).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n');
    expect((await stat(world.configPath)).mode & 0o777).toBe(0o600);
    expect(await readFile(world.configPath, 'utf8')).toContain(publicKey);
  });

  it('pushes the whole closure, then real Nix substitutes it with signatures required', async () => {
    const pushed = expectOk(await world.run(['push', 'e2e', closure.top]), 'cachix push');
    expect(pushed.stderr).toMatch(/pushed 3 paths .* skipped 0/);
    for (const path of await nixClosure(closure.top)) {
      const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hash}.narinfo`), 'utf8'));
      expect(narInfo.storePath).toBe(path);
      expect(narInfo.compression).toBe('zstd');
      const nar = await stat(join(cacheDir, narInfo.url));
      expect(nar.size).toBe(narInfo.fileSize);
    }
    const fresh = await substituteIntoFreshStore(closure.top, `file://${cacheDir}`, publicKey);
    expect(fresh.stderr).toBe('');
    expect(fresh.ok).toBe(true);
    const hello = await readFile(join(fresh.root, closure.top, 'bin', 'hello'), 'utf8');
    expect(hello).toContain('hello from');
    const random = await readFile(join(fresh.root, closure.data, 'share', 'random.bin'));
    expect(random.equals(await readFile(join(closure.data, 'share', 'random.bin')))).toBe(true);
    await rm(fresh.root, { recursive: true, force: true });
  });

  it('real Nix refuses the cache under a different key', async () => {
    const other = expectOk(await world.create('other'), 'generate-keypair').stdout.trim();
    const fresh = await substituteIntoFreshStore(closure.top, `file://${cacheDir}`, other);
    expect(fresh.ok).toBe(false);
    // Nix 2.8 warns that the substitute is not signed by a trusted key, then has nothing to build from.
    expect(fresh.stderr).toMatch(/is not signed by any of the keys in 'trusted-public-keys'|lacks a valid signature/);
    await expect(stat(join(fresh.root, closure.top))).rejects.toThrow('ENOENT');
    await rm(fresh.root, { recursive: true, force: true });
  });

  it('a second push uploads nothing', async () => {
    const again = expectOk(await world.run(['push', 'e2e', closure.top]), 'second push');
    expect(again.stderr).toMatch(/pushed 0 paths .* skipped 3/);
  });

  it('--quiet prints only the summary line: no per-path lines (cachix issue 568)', async () => {
    const fresh = await buildWithNix('push-quiet', 'echo quiet > $out');
    const loud = await buildWithNix('push-loud', 'echo loud > $out');
    const quiet = expectOk(await world.run(['push', 'e2e', '--quiet', fresh]), 'push --quiet');
    expect(quiet.stderr).toMatch(/^pushed 1 paths \(.*\), skipped 0 already in .*\n$/);
    expect(quiet.stderr.split('\n')).toHaveLength(2);
    // The same push without --quiet says more: the test above is not passing on an empty log.
    const said = expectOk(await world.run(['push', 'e2e', loud]), 'push');
    expect(said.stderr).toContain(`pushed ${loud}`);
  });

  it('a path piped in alone is pushed with its whole closure', async () => {
    const piped = await buildTestClosure('push-stdin-closure');
    const pushed = expectOk(await world.run(['push', 'e2e'], { input: `${piped.top}\n` }), 'push from stdin');
    expect(pushed.stderr).toMatch(/pushed 3 paths .* skipped 0/);
    for (const path of await nixClosure(piped.top)) {
      const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      expect(parseNarInfo(await readFile(join(cacheDir, `${hash}.narinfo`), 'utf8')).storePath).toBe(path);
    }
  });

  it('reads paths from stdin when none are given', async () => {
    const path = await buildWithNix('push-stdin', 'echo stdin > $out');
    const pushed = expectOk(await world.run(['push', 'e2e'], { input: `${path}\n` }), 'push from stdin');
    expect(pushed.stderr).toMatch(/pushed 1 paths/);
  });
});

describe('push -m none stores NARs byte-identical to nix-store --dump', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
  });
  afterAll(async () => world.cleanup());

  it('every NAR equals the dump of its path', async () => {
    const closure = await buildTestClosure('push-none');
    expectOk(await world.create('plain'), 'create');
    expectOk(await world.run(['push', 'plain', '-m', 'none', closure.top]), 'push -m none');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'plain');
    const paths = await nixClosure(closure.top);
    expect(paths).toHaveLength(3);
    for (const path of paths) {
      const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hash}.narinfo`), 'utf8'));
      expect(narInfo.compression).toBe('none');
      expect(narInfo.url).toMatch(/^nar\/[0-9a-z]{52}\.nar$/);
      const stored = await readFile(join(cacheDir, narInfo.url));
      expect(stored.equals(await nixDump(path))).toBe(true);
    }
  });

  it('also for a path of thousands of small files, streamed from nix-store --dump', async () => {
    const path = await buildWithNix('push-none-many', MANY_SMALL_FILES);
    expect(Number(await run('nix-store', ['-q', '--size', path]))).toBeGreaterThan(1 << 20);
    expectOk(await world.create('many'), 'create');
    expectOk(await world.run(['push', 'many', '-m', 'none', path]), 'push -m none');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'many');
    const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hash}.narinfo`), 'utf8'));
    expect((await readFile(join(cacheDir, narInfo.url))).equals(await nixDump(path))).toBe(true);
  });
});

describe('a path of many small files named on the command line is dumped from the start', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
    expectOk(await world.create('early'), 'create');
  });
  afterAll(async () => world.cleanup());

  // Its NAR is read (nix-store --dump, read ahead) while Node loads and Nix answers: held after
  // Nix's answers and before the upload, the push has the whole NAR already, so a change made
  // now is not what it reads. A push that dumped the path only now would read the change.
  it('its NAR is read before the push asks Nix for its record; the cache gets that NAR, checked', async () => {
    const path = await buildWithNix('early-dump', MANY_SMALL_FILES);
    const holds = await makeHolds();
    try {
      const original = await nixDump(path);
      expect(original.length).toBeGreaterThan(1 << 20);
      const push = startCachix(['push', 'early', path], { ...world.env, ...holds.env('push-uploading') });
      await holds.waitHeld('push-uploading');
      const dumping = (): boolean => spawnSync('pgrep', ['-f', `nix-store --dump ${path}$`]).status === 0;
      await waitUntil('nix-store --dump of the path to have ended', () => !dumping());
      await chmod(path, 0o755);
      await chmod(join(path, 'f1'), 0o644);
      await writeFile(join(path, 'f1'), 'X'.repeat(400));
      await holds.release('push-uploading');
      const { code, stderr } = await push.done;
      expect(code, stderr).toBe(0);
      const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'early');
      const narInfo = parseNarInfo(
        await readFile(join(cacheDir, `${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`), 'utf8'),
      );
      expect(decompress(await readFile(join(cacheDir, narInfo.url))).equals(original)).toBe(true);
    } finally {
      await holds.cleanup();
      await run('nix-store', ['--delete', path]).catch(() => undefined);
    }
  });
});

describe('a folder of thousands of empty files compresses as Nix compresses it', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
    expectOk(await world.create('empties'), 'create');
  });
  afterAll(async () => world.cleanup());

  // 20,000 empty files side by side: 3.7 MB of NAR that zstd -3 packs into some 32 KB. Split
  // into zstd's worker jobs it came out a fifth larger than nix copy's file.
  it('the file decompresses to the NAR and is no larger than nix copy ?compression=zstd&compression-level=3 makes it', async () => {
    const path = await buildWithNix('empty-files', 'mkdir $out; cd $out; seq 1 20000 | xargs touch');
    const nixCache = join(world.home, 'nix-copy');
    await run('nix', [...NIX_FEATURES, 'copy', '--to', `file://${nixCache}?compression=zstd&compression-level=3`, path]);
    const [theirs] = await readdir(join(nixCache, 'nar'));
    const theirBytes = (await stat(join(nixCache, 'nar', theirs!))).size;
    expectOk(await world.run(['push', 'empties', '-m', 'zstd', '-l', '3', path]), 'push');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'empties');
    const narInfo = parseNarInfo(
      await readFile(join(cacheDir, `${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`), 'utf8'),
    );
    const ours = await readFile(join(cacheDir, narInfo.url));
    expect(decompress(ours).equals(await nixDump(path))).toBe(true);
    expect(ours.length, `ours ${ours.length} bytes, nix copy's ${theirBytes}`).toBeLessThanOrEqual(theirBytes);
    await run('nix-store', ['--delete', path]).catch(() => undefined);
  });
});

describe('a corrupted store path is refused', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
  });
  afterAll(async () => world.cleanup());

  it('names the path and nix-store --verify-path, and leaves nothing of it in the cache', async () => {
    const path = await buildWithNix('corrupt-me', 'mkdir $out; echo original > $out/file; head -c 3000000 /dev/urandom > $out/big');
    expectOk(await world.create('guarded'), 'create');
    await chmod(path, 0o755);
    await chmod(join(path, 'file'), 0o644);
    const recordedSize = Number(await run('nix-store', ['-q', '--size', path]));
    await appendFile(join(path, 'file'), 'tampered\n');
    const result = await world.run(['push', 'guarded', path]);
    expect(result.code).toBe(1);
    // "tampered\n" is 9 bytes, padded to 8 in the NAR: 8 more than Nix recorded, caught before any hashing.
    expect(result.stderr).toContain(
      `cachix: ${path} does not match what Nix recorded (NAR size ${recordedSize + 8}, recorded ${recordedSize})`,
    );
    expect(result.stderr).toContain('nix-store --verify-path');
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'guarded');
    const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const entries = await readdir(cacheDir);
    expect(entries).not.toContain(`${hash}.narinfo`);
    expect(await readdir(join(cacheDir, 'nar'))).toEqual([]);
    await run('nix-store', ['--delete', path]).catch(() => undefined);
  });
});

describe('a same-size tampered store path is refused by its NarHash', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
    expectOk(await world.create('hashed'), 'create');
  });
  afterAll(async () => world.cleanup());

  // The size check cannot see these: one byte changed in place, the NAR as long as Nix recorded.
  it.each([
    ['small (hashed in memory)', ''],
    ['large (streamed from a worker)', 'head -c 3000000 /dev/urandom > $out/big'],
    ['many small files (streamed from nix-store --dump)', MANY_SMALL_FILES.replace('mkdir $out; ', '')],
  ])('%s: names the NarHash mismatch, exits 1, leaves nothing in the cache', async (_what, extra) => {
    const path = await buildWithNix('same-size-tamper', `mkdir $out; echo original > $out/file; ${extra}`);
    const recorded = (await run('nix-store', ['-q', '--hash', path])).trim().replace(/^sha256:/, '');
    await chmod(path, 0o755);
    await chmod(join(path, 'file'), 0o644);
    await writeFile(join(path, 'file'), 'ORIGINAL\n');
    const result = await world.run(['push', 'hashed', path]);
    expect(result.code).toBe(1);
    const [first, hint] = result.stderr.trim().split('\n').slice(-2);
    expect(first).toMatch(
      new RegExp(
        `^cachix: ${path} does not match what Nix recorded \\(NarHash sha256:[0-9a-z]{52}, recorded sha256:${recorded}\\); it was changed after it was built, and nothing of it was uploaded$`,
      ),
    );
    expect(hint).toBe(`  check it with: nix-store --verify-path ${path}  (repair: nix-store --repair-path ${path})`);
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'hashed');
    expect((await readdir(cacheDir)).filter((name) => name.endsWith('.narinfo'))).toEqual([]);
    expect(await readdir(join(cacheDir, 'nar'))).toEqual([]);
    await run('nix-store', ['--delete', path]).catch(() => undefined);
  });
});

describe('push errors a user can fix', () => {
  let world: CachixEnv;
  beforeAll(async () => {
    world = await makeCachixEnv();
    expectOk(await world.create('errs'), 'create');
  });
  afterAll(async () => world.cleanup());

  it('a path outside the store', async () => {
    const result = await world.run(['push', 'errs', '/etc/passwd']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/'\/etc\/passwd' is not a store path/);
  });

  it('a path that does not exist', async () => {
    const result = await world.run(['push', 'errs', '/nix/store/00000000000000000000000000000000-nope']);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(/is not a valid path in the Nix store/);
  });

  it('no signing key for a URL cache', async () => {
    const result = await world.run(['push', `file://${world.home}/elsewhere`, '/nix/store/00000000000000000000000000000000-x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no signing key/);
    expect(result.stderr).toMatch(/CACHIX_SIGNING_KEY/);
  });

  it('a public key given as CACHIX_SIGNING_KEY', async () => {
    const publicKey = expectOk(await world.create('k'), 'generate-keypair').stdout.trim();
    const result = await world.run(['push', `file://${world.home}/elsewhere`, '/nix/store/00000000000000000000000000000000-x'], {
      env: { CACHIX_SIGNING_KEY: publicKey },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is a public key/);
  });

  it('a truncated signing key, never echoed back', async () => {
    const config = await readFile(world.configPath, 'utf8');
    const secret = /signing_key = "([^"]+)"/.exec(config)![1]!;
    const truncated = secret.slice(0, 50);
    const result = await world.run(['push', `file://${world.home}/elsewhere`, '/nix/store/00000000000000000000000000000000-x'], {
      env: { CACHIX_SIGNING_KEY: truncated },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/bad signing key/);
    expect(result.stderr).not.toContain(truncated.split(':')[1]);
  });
});
