import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CachixEnv, type LocalCache, makeLocalCache } from '../helpers/cachix-env.js';
import { startCachix } from '../helpers/cli.js';
import { KEEP_BUILDER_LOG_OPEN, NO_SUBSTITUTERS, requireNix, run, hashOf } from '../helpers/nix.js';

/** Derivations `<name>-<i>` for each name, each sleeping `seconds`; nix-build prints their outputs. */
async function writeSet(dir: string, file: string, names: string[], seconds: number): Promise<string> {
  const path = join(dir, file);
  const one = (name: string): string =>
    `(derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; inherit salt;
      args = [ "-c" "PATH=/bin:/usr/bin; sleep ${seconds}; echo ${name} > $out; ${KEEP_BUILDER_LOG_OPEN}" ]; })`;
  await writeFile(path, `{ salt }: [ ${names.map(one).join('\n')} ]`);
  return path;
}

describe('watch-exec --watch-mode post-build-hook', () => {
  let world: CachixEnv;
  let work: string;
  let cacheDir: string;

  let local: LocalCache;

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('hooked');
    ({ world, work, cacheDir } = local);
  });
  afterAll(() => local.cleanup());

  const has = (path: string): boolean => existsSync(join(cacheDir, `${hashOf(path)}.narinfo`));

  /** watch-exec runs one nix-build while the test runs another beside it, without the hook. */
  async function buildSideBySide(mode: string): Promise<{ own: string[]; skipped: string; others: string[]; stderr: string }> {
    const salt = `${mode}-${process.pid}-${Date.now()}-${Math.random()}`;
    const ownFile = await writeSet(work, `own-${mode}.nix`, ['wxh-own-a', 'wxh-own-b', 'wxh-own-c', 'wxh-skip-d'], 1);
    const otherFile = await writeSet(work, `other-${mode}.nix`, ['wxh-other-a', 'wxh-other-b', 'wxh-other-c'], 0.5);
    const env = { ...world.env, NIX_CONFIG: 'substituters =' };
    const watching = startCachix(
      [
        'watch-exec',
        // Options go before the cache: everything after it belongs to the command.
        '--watch-mode',
        mode,
        '--exclude',
        '^wxh-skip-',
        'hooked',
        '--',
        'nix-build',
        ownFile,
        '--argstr',
        'salt',
        salt,
        '--no-out-link',
        '--quiet',
      ],
      env,
    );
    await watching.waitForStderr(/pushing what nix-build builds|watching \/nix\/store/);
    const others = (await run('nix-build', [otherFile, '--argstr', 'salt', salt, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS]))
      .trim()
      .split('\n');
    const exited = await watching.done;
    expect(exited.code, exited.stderr).toBe(0);
    // Built already: nix-build only prints the outputs, in order.
    const stdout = (await run('nix-build', [ownFile, '--argstr', 'salt', salt, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS])).trim();
    const built = stdout.split('\n');
    return { own: built.slice(0, 3), skipped: built[3]!, others, stderr: exited.stderr };
  }

  it("pushes only the command's builds while another process builds beside it; --exclude holds", async () => {
    const { own, skipped, others, stderr } = await buildSideBySide('post-build-hook');
    expect(stderr).toMatch(/handed over by Nix's post-build-hook \(as asked\)/);
    for (const path of own) expect(has(path), path).toBe(true);
    expect(has(skipped)).toBe(false);
    for (const path of others) expect(has(path), path).toBe(false);
    expect(stderr).toMatch(/pushed 3 paths .*not pushed: 1 path .* matched --exclude/);
  });

  it('store mode, for comparison, also pushes what the other process built', async () => {
    const { own, skipped, others } = await buildSideBySide('store');
    for (const path of own) expect(has(path), path).toBe(true);
    expect(has(skipped)).toBe(false);
    expect(others.some((path) => has(path))).toBe(true);
  });
});
