import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushSummary } from '../../src/push/push-options.js';
import { PushQueue } from '../../src/push/watch/queue.js';
import { queryValidPaths } from '../../src/store/path-info.js';
import { candidateBaseName, watchStore, type StoreWatcher } from '../../src/store/watch.js';
import { RecentSet } from '../../src/util/recent-set.js';
import { KEEP_BUILDER_LOG_OPEN, buildWithNix, requireNix, run } from '../helpers/nix.js';
import { waitUntil } from '../helpers/wait.js';

// This machine cannot reach cache.nixos.org; without this every nix-build waits ~4 s for it.
process.env.NIX_CONFIG ??= 'substituters =';

const HASH = '0123456789abcdfghijklmnpqrsvwxyz'.slice(0, 32);

describe('candidateBaseName', () => {
  it('takes output locks and new paths, and ignores derivations, their locks and Nix internals', () => {
    expect(candidateBaseName(`${HASH}-hello-2.12.lock`)).toBe(`${HASH}-hello-2.12`);
    expect(candidateBaseName(`${HASH}-hello-2.12`)).toBe(`${HASH}-hello-2.12`);
    expect(candidateBaseName(`${HASH}-hello-2.12.drv.lock`)).toBeUndefined();
    expect(candidateBaseName(`${HASH}-hello-2.12.drv`)).toBeUndefined();
    expect(candidateBaseName(`${HASH}-hello-2.12.chroot`)).toBeUndefined();
    expect(candidateBaseName('.links')).toBeUndefined();
    expect(candidateBaseName('.gc.lock')).toBeUndefined();
    expect(candidateBaseName('not-a-store-path.lock')).toBeUndefined();
  });
});

describe('RecentSet', () => {
  it('keeps only the newest entries', () => {
    const recent = new RecentSet(3);
    for (const key of ['a', 'b', 'c', 'd']) recent.add(key);
    expect([recent.has('a'), recent.has('b'), recent.has('d'), recent.size]).toEqual([false, true, true, 3]);
    recent.add('b'); // touched again: now the newest
    recent.add('e');
    expect([recent.has('b'), recent.has('c')]).toEqual([true, false]);
  });
});

describe('StoreWatcher with real Nix builds', () => {
  let watcher: StoreWatcher | undefined;
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
  });

  function startWatching(): string[] {
    requireNix();
    const seen: string[] = [];
    watcher = watchStore({
      storeDir: '/nix/store',
      queryValid: queryValidPaths,
      onValidPaths: async (paths) => void seen.push(...paths),
      log: (line) => process.stderr.write(`${line}\n`),
      intervalMs: 100,
    });
    return seen;
  }

  it('emits each built output once, its dependency too, and never the .drv files', async () => {
    const seen = startWatching();
    const dep = await buildWithNix('watch-dep', 'echo dep > $out');
    const top = await buildWithNix('watch-top', 'mkdir $out; echo $dep0 > $out/ref', { deps: [dep] });
    await waitUntil('both outputs', () => seen.includes(dep) && seen.includes(top));
    await watcher!.close();
    expect(seen.filter((path) => path === top || path === dep)).toHaveLength(2);
    expect(seen.filter((path) => path.endsWith('.drv'))).toEqual([]);
  });

  it('emits paths added with nix-store --add', async () => {
    const seen = startWatching();
    const dir = await mkdtemp(join(tmpdir(), 'cachix-watch-'));
    await writeFile(join(dir, 'note.txt'), `added ${Date.now()} ${Math.random()}\n`);
    const added = (await run('nix-store', ['--add', join(dir, 'note.txt')])).trim();
    await waitUntil('the added path', () => seen.includes(added));
    await rm(dir, { recursive: true });
  });

  it('does not emit the output of a failed build, which stays invalid', async () => {
    requireNix();
    const seen: string[] = [];
    const queried: string[] = [];
    const current = watchStore({
      storeDir: '/nix/store',
      queryValid: async (paths) => {
        queried.push(...paths);
        return queryValidPaths(paths);
      },
      onValidPaths: async (paths) => void seen.push(...paths),
      log: (line) => process.stderr.write(`${line}\n`),
      intervalMs: 100,
    });
    watcher = current;
    const dir = await mkdtemp(join(tmpdir(), 'cachix-watch-'));
    const file = join(dir, 'fail.nix');
    await writeFile(
      file,
      `derivation { name = "watch-fail"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh";
      args = [ "-c" "echo partial > $out; exit 1" ]; salt = "${Date.now()}-${Math.random()}"; }`,
    );
    const drv = (await run('nix-instantiate', [file])).trim();
    const out = (await run('nix-store', ['-q', '--outputs', drv])).trim();
    await expect(run('nix-store', ['--realise', drv])).rejects.toThrow(/failed/);
    const ok = await buildWithNix('watch-after-fail', 'echo ok > $out');
    await waitUntil('the later good build', () => seen.includes(ok));
    // Nix was asked about the failed output and the watcher keeps nothing to look at again: the
    // verdict on it is final, so it can never be emitted later.
    await waitUntil('the failed output decided on', () => queried.includes(out) && current.waiting === 0, 20_000);
    expect(seen).not.toContain(out);
    await rm(dir, { recursive: true });
  });

  it('emits all of 60 outputs of one nix-build while the consumer is slow (backpressure)', async () => {
    requireNix();
    const OUTPUTS = 60;
    const seen: string[] = [];
    let calls = 0;
    watcher = watchStore({
      storeDir: '/nix/store',
      queryValid: queryValidPaths,
      onValidPaths: async (paths) => {
        calls++;
        await delay(300);
        seen.push(...paths);
      },
      log: () => undefined,
      intervalMs: 100,
    });
    const dir = await mkdtemp(join(tmpdir(), 'cachix-watch-'));
    const salt = `${Date.now()}-${Math.random()}`;
    await writeFile(
      join(dir, 'many.nix'),
      `builtins.genList (n: derivation { name = "watch-many-\${toString n}";
      system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; args = [ "-c" "echo \${toString n} > $out; ${KEEP_BUILDER_LOG_OPEN}" ]; salt = "${salt}"; }) ${OUTPUTS}`,
    );
    const outputs = (await run('nix-build', [join(dir, 'many.nix'), '--no-out-link', '--quiet'])).trim().split('\n');
    expect(outputs).toHaveLength(OUTPUTS);
    await waitUntil(`all ${OUTPUTS} outputs`, () => outputs.every((path) => seen.includes(path)), 60_000);
    // A slow consumer means events were gathered into fewer, larger batches, not one call each.
    expect(calls).toBeLessThan(OUTPUTS / 2);
    await rm(dir, { recursive: true });
  });
});

describe('StoreWatcher on a directory we control (the races Nix makes rare)', () => {
  it('looks again at a path that appeared without a lock until it becomes valid', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'cachix-fake-store-'));
    const base = `${HASH}-appears-unlocked`;
    let validNow = false;
    let checks = 0;
    const seen: string[] = [];
    const watcher = watchStore({
      storeDir,
      queryValid: async (paths) => {
        if (paths.some((path) => path.endsWith(base))) checks++;
        return validNow ? paths.filter((path) => path.endsWith(base)) : [];
      },
      onValidPaths: async (paths) => void seen.push(...paths),
      log: () => undefined,
      intervalMs: 50,
    });
    await mkdir(join(storeDir, base));
    // Checked once: not valid yet, no lock, so it is looked at again later.
    await waitUntil('the first check of the path', () => checks > 0, 5_000);
    expect(seen).toEqual([]);
    validNow = true;
    await waitUntil('the recheck', () => seen.length > 0, 5_000);
    expect(seen).toEqual([join(storeDir, base)]);
    await watcher.close();
    await rm(storeDir, { recursive: true });
  });

  it('waits for the unlock of a path that is still locked, and ignores a deleted path', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'cachix-fake-store-'));
    const base = `${HASH}-locked`;
    const gone = `${HASH.slice(0, 31)}0-deleted`;
    const valid = new Set<string>();
    const queried: string[] = [];
    const seen: string[] = [];
    const watcher = watchStore({
      storeDir,
      queryValid: async (paths) => {
        queried.push(...paths);
        return paths.filter((path) => valid.has(path));
      },
      onValidPaths: async (paths) => void seen.push(...paths),
      log: () => undefined,
      intervalMs: 50,
    });
    await writeFile(join(storeDir, `${base}.lock`), '');
    await mkdir(join(storeDir, base));
    await mkdir(join(storeDir, gone));
    await rm(join(storeDir, gone), { recursive: true });
    // Both asked about once, and neither kept for a recheck: the locked one waits for its unlock
    // event, the deleted one is dropped.
    await waitUntil(
      'both paths asked about, none kept for a recheck',
      () => queried.some((path) => path.endsWith(base)) && queried.some((path) => path.endsWith(gone)) && watcher.waiting === 0,
      5_000,
    );
    const queriedBeforeUnlock = queried.length;
    expect(seen).toEqual([]);
    valid.add(join(storeDir, base));
    await rm(join(storeDir, `${base}.lock`));
    await waitUntil('the unlocked path', () => seen.length > 0, 5_000);
    expect(seen).toEqual([join(storeDir, base)]);
    expect(queried.length).toBe(queriedBeforeUnlock + 1);
    await watcher.close();
    await rm(storeDir, { recursive: true });
  });
});

const storePath = (index: number): string => `/nix/store/${index.toString().padStart(32, '0')}-p${index}`;
const okSummary = (paths: string[]): PushSummary => ({
  pushed: paths.length,
  skipped: 0,
  failed: 0,
  narBytes: 100 * paths.length,
  fileBytes: 10 * paths.length,
});

describe('PushQueue', () => {
  it('pushes in batches, once per path, and remembers what it pushed', async () => {
    const batches: string[][] = [];
    const queue = new PushQueue({
      push: async (paths) => (batches.push(paths), okSummary(paths)),
      stillValid: async (paths) => paths,
      log: () => undefined,
      batchSize: 4,
    });
    const paths = Array.from({ length: 10 }, (_, index) => storePath(index));
    await queue.add([...paths, paths[0]!, paths[1]!]);
    await queue.drain();
    await queue.add(paths.slice(0, 5)); // pushed already: nothing to do
    const totals = await queue.drain();
    expect(batches.flat().sort()).toEqual([...paths].sort());
    expect(Math.max(...batches.map((batch) => batch.length))).toBeLessThanOrEqual(4);
    expect(totals).toMatchObject({ pushed: 10, narBytes: 1000, fileBytes: 100, failed: 0 });
  });

  it('retries a failing batch after logging one line, and keeps going', async () => {
    let failuresLeft = 2;
    const lines: string[] = [];
    const queue = new PushQueue({
      push: async (paths) => {
        if (failuresLeft-- > 0) throw new Error('HTTP 503 from the cache');
        return okSummary(paths);
      },
      stillValid: async (paths) => paths,
      log: (line) => lines.push(line),
      retryDelayMs: () => 10,
    });
    await queue.add([storePath(1), storePath(2)]);
    const totals = await queue.drain();
    expect(totals.pushed).toBe(2);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('push of 2 paths failed: HTTP 503 from the cache; retrying in two halves later');
    expect(lines[1]).toBe(`push of ${storePath(1)} failed: HTTP 503 from the cache; retrying it later`);
  });

  it('isolates a path that keeps failing and gives it up, while the others get pushed', async () => {
    const poison = storePath(3);
    const pushed: string[] = [];
    const lines: string[] = [];
    const queue = new PushQueue({
      push: async (paths) => {
        if (paths.includes(poison)) throw new Error('NAR hash mismatch');
        pushed.push(...paths);
        return okSummary(paths);
      },
      stillValid: async (paths) => paths,
      log: (line) => lines.push(line),
      retryDelayMs: () => 1,
      maxAttempts: 4,
      batchSize: 8,
    });
    const paths = Array.from({ length: 8 }, (_, index) => storePath(index));
    await queue.add(paths);
    await waitUntil('the poison path to be given up', () => queue.totals.failed === 1, 5_000); // still watching, not draining
    const totals = await queue.drain();
    expect(pushed.sort()).toEqual(paths.filter((path) => path !== poison).sort());
    expect(totals.failed).toBe(1);
    expect(lines.at(-1)).toBe(`gave up on ${poison} after 4 failed attempts`);
    expect(lines.filter((line) => line.startsWith(`push of ${poison} failed`))).toHaveLength(4);
  });

  it('drops paths that are no longer valid instead of retrying them', async () => {
    const lines: string[] = [];
    let calls = 0;
    const queue = new PushQueue({
      push: async () => {
        calls++;
        throw new Error('path is not valid');
      },
      stillValid: async () => [],
      log: (line) => lines.push(line),
      retryDelayMs: () => 1,
    });
    await queue.add([storePath(7)]);
    await queue.drain();
    expect(calls).toBe(1);
    expect(lines[1]).toBe(`not pushing ${storePath(7)}: no longer valid (garbage collected?)`);
  });

  it('makes add wait while the queue is full, and reports what abort leaves behind', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const queue = new PushQueue({
      push: async (paths) => (await blocked, okSummary(paths)),
      stillValid: async (paths) => paths,
      log: () => undefined,
      maxPending: 5,
      batchSize: 2,
    });
    let added = false;
    const adding = queue.add(Array.from({ length: 9 }, (_, index) => storePath(index))).then(() => (added = true));
    await delay(50);
    expect(added).toBe(false); // 2 in flight, 5 pending, 2 waiting for room
    expect(queue.unpushed).toBe(7);
    release();
    await adding;
    expect((await queue.drain()).pushed).toBe(9);
    const stuck = new PushQueue({ push: () => new Promise(() => undefined), stillValid: async (paths) => paths, log: () => undefined });
    await stuck.add([storePath(1), storePath(2)]);
    expect(stuck.abort()).toBe(2);
  });
});
