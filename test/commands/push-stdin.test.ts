// Paths from stdin as cachix-action sends them (github cachix/cachix-action, dist/push-paths.sh):
// `echo "$pathsToPush" | "$cachix" push "$cachixArgs" "$cache"`, with `-j8` as cachixArgs by
// default and pathsToPush every new entry of /nix/store, or nothing on a job that built nothing.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { makeLocalCache, type LocalCache } from '../helpers/cachix-env.js';
import { buildWithNix, hashOf } from '../helpers/nix.js';
import { substituteIntoFreshStore } from '../helpers/substitute.js';

const narinfos = async (cacheDir: string): Promise<string[]> =>
  (await readdir(cacheDir)).filter((name) => name.endsWith('.narinfo')).sort();

describe('push with paths on stdin, as cachix-action runs it', () => {
  let cache: LocalCache;
  let publicKey: string;
  let lib: string;
  let top: string;
  let other: string;
  // A real leftover: a directory in the store that Nix's database does not know (a build's
  // temporary output, a path half deleted).
  const leftover = `/nix/store/${'0'.repeat(31)}a-cachix-test-leftover-${process.pid}`;

  beforeAll(async () => {
    cache = await makeLocalCache('stdin');
    publicKey = cache.created.stdout.trim();
    lib = await buildWithNix('stdin-lib', 'mkdir -p $out/lib; echo lib > $out/lib/data');
    top = await buildWithNix('stdin-top', `mkdir -p $out/bin; echo ${'$dep0'} > $out/bin/ref`, { deps: [lib] });
    other = await buildWithNix('stdin-other', 'echo other > $out');
    await mkdir(leftover);
  });
  afterAll(async () => {
    await rm(leftover, { recursive: true, force: true });
    await cache?.cleanup();
  });

  it('an empty stdin (`echo "" | cachix push -j8 NAME`) pushes nothing, says so and exits 0', async () => {
    const result = await cache.world.run(['push', '-j8', 'stdin'], { input: '\n' });
    expect(result.stderr).toBe('no store paths on stdin: nothing to push\n');
    expect(result.code).toBe(0);
    expect(await narinfos(cache.cacheDir)).toEqual([]);
  });

  it('no paths and stdin a terminal is still an error', async () => {
    let stderr = '';
    const stdin = Object.assign(Readable.from([]), { isTTY: true });
    const code = await runCli(['push', 'stdin'], {
      env: { ...process.env, ...cache.world.env, CI: 'true' },
      stdout: { write: () => true },
      stderr: { write: (text: string) => (stderr += text) },
      stdin,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^cachix: no store paths given\n {2}pass them as arguments/);
  });

  it('invalid entries are named and skipped, the valid ones pushed, and real Nix substitutes them', async () => {
    const missing = `/nix/store/${'1'.repeat(32)}-never-built`;
    const input = [leftover, top, missing, '/nix/store/.links', other].join('\n') + '\n';
    const result = await cache.world.run(['push', '-j8', 'stdin'], { input });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`warning: not pushing ${leftover}: is not a valid path in the Nix store\n`);
    expect(result.stderr).toContain(`warning: not pushing ${missing}: is not a valid path in the Nix store\n`);
    expect(result.stderr).toContain('warning: not pushing /nix/store/.links: ');
    expect(result.stderr).toMatch(/pushed 3 paths .*\nskipped 3 of 5 entries from stdin that are not valid store paths \(named above\)\n$/);
    expect(await narinfos(cache.cacheDir)).toEqual([lib, top, other].map((path) => `${hashOf(path)}.narinfo`).sort());
    for (const path of [top, other]) {
      const fresh = await substituteIntoFreshStore(path, `file://${cache.cacheDir}`, publicKey);
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
      await rm(fresh.root, { recursive: true, force: true });
    }
  });

  it('stdin holding only invalid entries pushes nothing and exits 0, naming each', async () => {
    const result = await cache.world.run(['push', 'stdin'], { input: `${leftover}\n` });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      `warning: not pushing ${leftover}: is not a valid path in the Nix store\n` +
        'skipped 1 of 1 entries from stdin that are not valid store paths (named above): nothing to push\n',
    );
  });

  it('paths typed as arguments stay strict: one invalid path fails the push before anything is stored', async () => {
    const before = await narinfos(cache.cacheDir);
    const fresh = await buildWithNix('stdin-strict', 'echo strict > $out');
    const result = await cache.world.run(['push', 'stdin', fresh, leftover]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cachix: ${leftover} is not a valid path in the Nix store`);
    expect(await narinfos(cache.cacheDir)).toEqual(before);
  });
});
