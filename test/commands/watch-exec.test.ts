import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { type CachixEnv, type LocalCache, makeLocalCache } from '../helpers/cachix-env.js';
import { startCachix } from '../helpers/cli.js';
import { waitUntil } from '../helpers/wait.js';
import { KEEP_BUILDER_LOG_OPEN, nixClosure, requireNix, hashOf } from '../helpers/nix.js';

// This machine cannot reach cache.nixos.org; without this every nix-build waits ~4 s for it.
process.env.NIX_CONFIG ??= 'substituters =';

/** A Nix expression file for one fresh derivation whose output refers to `dep` when given. */
async function writeDerivation(dir: string, name: string, salt: string, depFile?: string): Promise<string> {
  const file = join(dir, `${name}.nix`);
  const dep = depFile ? `dep = import ${depFile};` : '';
  const script = `${depFile ? 'echo $dep > $out' : 'echo built > $out'}; ${KEEP_BUILDER_LOG_OPEN}`;
  await writeFile(
    file,
    `derivation { name = "${name}"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh";
    args = [ "-c" "${script}" ]; salt = "${salt}"; ${dep} }`,
  );
  return file;
}

describe('cachix watch-exec', () => {
  let world: CachixEnv;
  let work: string;
  let cacheDir: string;

  let local: LocalCache;

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('exec');
    ({ world, work, cacheDir } = local);
  });
  afterAll(() => local.cleanup());

  it('pushes what a failing command built (two nix-builds) and exits with its code, 3', async () => {
    const salt = `${process.pid}-${Date.now()}-${Math.random()}`;
    const first = await writeDerivation(work, 'exec-first', salt);
    const second = await writeDerivation(work, 'exec-second', salt, first);
    const script = join(work, 'build.sh');
    const outputs = join(work, 'outputs.txt');
    await writeFile(
      script,
      `set -e
nix-build ${first} --no-out-link --quiet > ${outputs}
nix-build ${second} --no-out-link --quiet >> ${outputs}
echo "the build script says goodbye"
exit 3
`,
    );
    const result = await world.spawn(['watch-exec', 'exec', '--', 'sh', script]);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stdout).toContain('the build script says goodbye'); // the command's stdout is ours
    const built = (await readFile(outputs, 'utf8')).trim().split('\n');
    expect(built).toHaveLength(2);
    // The second refers to the first: its whole closure (both outputs) must be in the cache.
    expect((await nixClosure(built[1]!)).sort()).toEqual([...built].sort());
    for (const path of built) {
      const narInfo = parseNarInfo(await readFile(join(cacheDir, `${hashOf(path)}.narinfo`), 'utf8'));
      expect(narInfo.storePath).toBe(path);
      expect((await stat(join(cacheDir, narInfo.url))).size).toBe(narInfo.fileSize);
    }
    // Tests run as root, whom Nix trusts: the default watch mode, auto, takes the post-build-hook.
    expect(result.stderr).toMatch(
      /pushing what sh builds to exec, handed over by Nix's post-build-hook \(Nix will run our post-build-hook: root is trusted\)/,
    );
    expect(result.stderr).toMatch(/^pushed \d+ paths/m);
  });

  it('--quiet: stderr holds only the closing summary line', async () => {
    const derivation = await writeDerivation(work, 'exec-quiet', `${process.pid}-${Date.now()}-${Math.random()}`);
    // Options go before the cache name: what follows it is the command's.
    const result = await world.run([
      'watch-exec',
      '--quiet',
      'exec',
      '--',
      'sh',
      '-c',
      `nix-build ${derivation} --no-out-link --quiet > /dev/null 2>&1`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^pushed 1 paths \(\d+(\.\d)? [KMG]?i?B\)\n$/);
  });

  it('exits 0 with a command that succeeds, and passes its arguments through untouched', async () => {
    const result = await world.spawn(['watch-exec', 'exec', '--', 'sh', '-c', 'echo "$0|$1"; exit 0', '-m', '--jobs']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('-m|--jobs');
  });

  it('forwards SIGTERM to the command and exits as the command did (143)', async () => {
    const marker = join(work, 'trapped');
    const running = startCachix(
      ['watch-exec', 'exec', '--', 'sh', '-c', `trap 'echo trapped > ${marker}; exit 143' TERM; echo started; while :; do sleep 0.1; done`],
      world.env,
    );
    await running.waitForStderr(/watching|pushing what/, 20_000);
    // The command prints `started` (on our stdout, which it shares) once its trap is set.
    await waitUntil('the command to set its trap', () => running.stdout().includes('started'), {
      timeoutMs: 20_000,
      details: running.stderr,
    });
    running.kill('SIGTERM');
    const result = await running.done;
    expect(result.code, result.stderr).toBe(143);
    expect(existsSync(marker)).toBe(true); // the child got the signal and ran its trap
  });

  it('exits 127 with a hint when the command does not exist', async () => {
    const result = await world.spawn(['watch-exec', 'exec', '--', 'no-such-command-here']);
    expect(result.code).toBe(127);
    expect(result.stderr).toContain('cannot run no-such-command-here: command not found');
  });
});
