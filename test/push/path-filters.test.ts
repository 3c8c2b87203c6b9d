import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { makeCachixEnv, expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { buildTestClosure, buildWithNix, nixClosure, NO_SUBSTITUTERS, run, KEEP_BUILDER_LOG_OPEN, hashOf } from '../helpers/nix.js';
import { substituteIntoFreshStore } from '../helpers/substitute.js';
import { copyToUpstream, makeUpstreamKey, signLocally } from '../helpers/upstream.js';

/** The store paths a file cache holds narinfos for, each checked against its NAR file. */
async function cachedPaths(cacheDir: string, candidates: string[]): Promise<string[]> {
  const held: string[] = [];
  for (const path of candidates) {
    const file = join(cacheDir, `${hashOf(path)}.narinfo`);
    if (!existsSync(file)) continue;
    const narInfo = parseNarInfo(await readFile(file, 'utf8'));
    expect(narInfo.storePath).toBe(path);
    expect((await stat(join(cacheDir, narInfo.url))).size).toBe(narInfo.fileSize);
    held.push(path);
  }
  return held.sort();
}

describe('the upstream filter: paths signed by cache.nixos.org-1 are not pushed', () => {
  let world: CachixEnv;
  let closure: { top: string; lib: string; data: string };
  let upstreamKey: Awaited<ReturnType<typeof makeUpstreamKey>>;
  let upstreamDir: string;

  beforeAll(async () => {
    world = await makeCachixEnv();
    closure = await buildTestClosure('upstream');
    upstreamKey = await makeUpstreamKey();
    // lib and data look substituted from cache.nixos.org; top was built here.
    await signLocally(upstreamKey.secretFile, [closure.lib, closure.data]);
    upstreamDir = await mkdtemp(join(tmpdir(), 'cachix-upstream-cache-'));
    await copyToUpstream(upstreamDir, [closure.lib]);
  });
  afterAll(async () => {
    await world.cleanup();
    await rm(upstreamDir, { recursive: true, force: true });
  });

  it('skips them by default, says how many and how much, and real Nix gets the closure from both caches', async () => {
    const publicKey = expectOk(await world.create('ours'), 'create').stdout.trim();
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'ours');
    const pushed = expectOk(await world.run(['push', 'ours', closure.top]), 'push');
    expect(pushed.stderr).toMatch(
      /pushed 1 paths .* skipped 0 already in .*; not pushed: 2 paths \(\d+\.\d MiB of NAR\) signed by cache\.nixos\.org-1, served upstream \(push them anyway with --include-upstream\)/,
    );
    expect(await cachedPaths(cacheDir, await nixClosure(closure.top))).toEqual([closure.top]);

    const fresh = await substituteIntoFreshStore(
      closure.top,
      `file://${cacheDir} file://${upstreamDir}`,
      `${publicKey} ${upstreamKey.publicKey}`,
    );
    expect(fresh.stderr).toBe('');
    expect(fresh.ok).toBe(true);
    for (const path of await nixClosure(closure.top)) expect(existsSync(join(fresh.root, path))).toBe(true);
    await rm(fresh.root, { recursive: true, force: true });

    // verify -r: the two upstream paths are reported as such, not as failures.
    const verified = await world.run(['verify', 'ours', '-r', closure.top]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`${closure.lib} served upstream (signed by cache.nixos.org-1, not in ours)`);
    expect(verified.stdout).toContain(`${closure.top} ok`);
    expect(verified.stderr).toMatch(/all 3 paths verified in ours \(2 of them served upstream\)/);
    const strict = await world.run(['verify', 'ours', '-r', '--include-upstream', closure.top]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain(`${closure.lib} FAIL: the cache has no narinfo for it`);
  });

  it('--include-upstream pushes everything, and the cache alone then serves the closure', async () => {
    const publicKey = expectOk(await world.create('all'), 'create').stdout.trim();
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'all');
    const pushed = expectOk(await world.run(['push', 'all', '--include-upstream', closure.top]), 'push');
    expect(pushed.stderr).toMatch(/pushed 3 paths/);
    expect(pushed.stderr).not.toMatch(/not pushed/);
    expect(await cachedPaths(cacheDir, await nixClosure(closure.top))).toEqual((await nixClosure(closure.top)).sort());
    const fresh = await substituteIntoFreshStore(closure.top, `file://${cacheDir}`, publicKey);
    expect(fresh.ok, fresh.stderr).toBe(true);
    await rm(fresh.root, { recursive: true, force: true });
  });

  it("a path signed by the user's own key (Nix's secret-key-files) is pushed: only upstream keys mark a path upstream", async () => {
    const own = await makeUpstreamKey('workstation.example-1');
    const path = await buildWithNix('signed-here', 'echo signed by the machine that built it > $out');
    await signLocally(own.secretFile, [path]);
    expectOk(await world.create('signedhere'), 'create');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'signedhere');
    const pushed = expectOk(await world.run(['push', 'signedhere', path]), 'push');
    expect(pushed.stderr).toMatch(/pushed 1 paths/);
    expect(pushed.stderr).not.toMatch(/not pushed/);
    expect(await cachedPaths(cacheDir, [path])).toEqual([path]);
  });

  it('--upstream-key adds a key; upstream_keys in the config replaces the default', async () => {
    const other = await makeUpstreamKey('company-upstream-1');
    const path = await buildWithNix('upstream-other', 'echo other > $out');
    await signLocally(other.secretFile, [path]);
    expectOk(await world.create('keys'), 'create');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'keys');
    const skipped = expectOk(await world.run(['push', 'keys', '--upstream-key', 'company-upstream-1', path]), 'push');
    expect(skipped.stderr).toMatch(/pushed 0 paths.*not pushed: 1 path .* signed by company-upstream-1/);
    expect(await cachedPaths(cacheDir, [path])).toEqual([]);

    // The cache's own setting: an empty list pushes paths signed by cache.nixos.org-1 too.
    await appendFile(world.configPath, '');
    const config = await readFile(world.configPath, 'utf8');
    await writeFile(world.configPath, config.replace(/\[caches\.keys\]\n/, '[caches.keys]\nupstream_keys = []\n'));
    const pushed = expectOk(await world.run(['push', 'keys', closure.lib]), 'push with upstream_keys = []');
    expect(pushed.stderr).toMatch(/pushed 2 paths/);
    expect(await cachedPaths(cacheDir, [closure.lib, closure.data])).toEqual([closure.lib, closure.data].sort());

    await writeFile(world.configPath, config.replace(/\[caches\.keys\]\n/, '[caches.keys]\nupstream_keys = "cache.nixos.org-1"\n'));
    const bad = await world.run(['push', 'keys', path]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/upstream_keys of cache 'keys' must be a list of key names/);
  });
});

describe('--exclude, --no-closure, --with-build-deps on real builds', () => {
  let world: CachixEnv;
  let closure: { top: string; lib: string; data: string };

  beforeAll(async () => {
    world = await makeCachixEnv();
    closure = await buildTestClosure('filters');
  });
  afterAll(async () => world.cleanup());

  it('--exclude leaves out matching names and warns once per pushed path that references one the cache lacks', async () => {
    expectOk(await world.create('ex'), 'create');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'ex');
    const pushed = expectOk(await world.run(['push', 'ex', '--exclude', '-data$', '--exclude', 'never-matches', closure.top]), 'push');
    expect(await cachedPaths(cacheDir, await nixClosure(closure.top))).toEqual([closure.lib, closure.top].sort());
    const warnings = pushed.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    expect(warnings).toEqual([
      `warning: ${closure.lib} references ${closure.data} (excluded by --exclude), which file://${cacheDir} lacks: Nix will need it from another cache`,
    ]);
    expect(pushed.stderr).toMatch(/not pushed: 1 path \(.*\) matched --exclude/);

    // Once the cache has it, no warning.
    expectOk(await world.run(['push', 'ex', closure.data]), 'push data');
    const again = expectOk(await world.run(['push', 'ex', '--exclude', '-data$', closure.top]), 'push again');
    expect(again.stderr).not.toMatch(/warning:/);
  });

  it('a bad --exclude is one line', async () => {
    const result = await world.run(['push', 'ex', '--exclude', '(unclosed', closure.top]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(/^cachix: --exclude '\(unclosed' is not a valid regular expression/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('--no-closure pushes exactly the paths given and names the reference the cache lacks', async () => {
    expectOk(await world.create('nc'), 'create');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'nc');
    const pushed = expectOk(await world.run(['push', 'nc', '--no-closure', closure.top]), 'push');
    expect(await cachedPaths(cacheDir, await nixClosure(closure.top))).toEqual([closure.top]);
    const warnings = pushed.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    expect(warnings).toEqual([
      `warning: ${closure.top} references ${closure.lib} (not pushed with --no-closure), which file://${cacheDir} lacks: Nix will need it from another cache`,
    ]);
    const both = expectOk(await world.run(['push', 'nc', '--no-closure', closure.data, closure.lib]), 'push two');
    expect(both.stderr).toMatch(/pushed 2 paths/);
    expect(both.stderr).not.toMatch(/warning:/);
    expect(await cachedPaths(cacheDir, await nixClosure(closure.top))).toEqual((await nixClosure(closure.top)).sort());
  });

  it('--with-build-deps also pushes the derivations and the build-time-only inputs, valid outputs only', async () => {
    const work = await mkdtemp(join(tmpdir(), 'cachix-build-deps-'));
    const salt = `${process.pid}-${Date.now()}-${Math.random()}`;
    const file = join(work, 'default.nix');
    // `tool` is needed to build `app` but not referenced by it; `docs` is never built.
    await writeFile(
      file,
      `let
  mk = name: script: extra: derivation ({ inherit name; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh";
    args = [ "-c" (script + "; ${KEEP_BUILDER_LOG_OPEN}") ]; salt = "${salt}"; } // extra);
  tool = mk "bd-tool" "echo compiler > $out" {};
  docs = mk "bd-docs" "echo docs > $out" {};
in mk "bd-app" "read x < $tool; echo \\"built with $x\\" > $out" { inherit tool; docsDrv = builtins.unsafeDiscardOutputDependency docs.drvPath; }
`,
    );
    const app = (await run('nix-build', [file, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS])).trim();
    const appDrv = (await run('nix-store', ['--query', '--deriver', app])).trim();
    const requisites = (await run('nix-store', ['--query', '--requisites', '--include-outputs', appDrv])).trim().split('\n');
    const tool = requisites.find((path) => path.endsWith('-bd-tool'))!;
    const toolDrv = requisites.find((path) => path.endsWith('-bd-tool.drv'))!;
    const docsDrv = requisites.find((path) => path.endsWith('-bd-docs.drv'))!;
    expect(tool).toBeDefined();
    expect(await nixClosure(app)).toEqual([app]); // runtime closure: app alone

    expectOk(await world.create('bd'), 'create');
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'bd');
    expectOk(await world.run(['push', 'bd', app]), 'push without');
    expect(await cachedPaths(cacheDir, requisites)).toEqual([app]);
    const pushed = expectOk(await world.run(['push', 'bd', '--with-build-deps', app]), 'push --with-build-deps');
    expect(await cachedPaths(cacheDir, requisites)).toEqual([app, appDrv, tool, toolDrv, docsDrv].sort());
    expect(pushed.stderr).toMatch(/pushed 4 paths/);
    await rm(work, { recursive: true, force: true });
  });

  it('--with-build-deps on a path without a derivation here says so and pushes its runtime closure', async () => {
    const added = (await run('nix-store', ['--add', await writeTemp('no-deriver', `${Date.now()}-${Math.random()}`)])).trim();
    const pushed = expectOk(await world.run(['push', 'bd', '--with-build-deps', added]), 'push');
    expect(pushed.stderr).toContain(`warning: ${added} has no derivation in this store (substituted?): pushing its runtime closure only`);
    expect(pushed.stderr).toMatch(/pushed 1 paths/);
  });
});

async function writeTemp(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cachix-add-'));
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}
