import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { LocalCache } from './cachix-env.js';
import { startCachix } from './cli.js';
import { KEEP_BUILDER_LOG_OPEN, NO_SUBSTITUTERS, run } from './nix.js';

/** Derivations `<name>-<i>` for each name, each sleeping `seconds`; nix-build prints their outputs. */
async function writeSet(dir: string, file: string, names: string[], seconds: number): Promise<string> {
  const path = join(dir, file);
  const one = (name: string): string =>
    `(derivation { name = "${name}"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; inherit salt;
      args = [ "-c" "PATH=/bin:/usr/bin; sleep ${seconds}; echo ${name} > $out; ${KEEP_BUILDER_LOG_OPEN}" ]; })`;
  await writeFile(path, `{ salt }: [ ${names.map(one).join('\n')} ]`);
  return path;
}

/**
 * `watch-exec --watch-mode MODE --exclude ^wxh-skip- CACHE -- nix-build` of four derivations
 * (the last one excluded) while the test runs another nix-build of three beside it, without the
 * hook. Returns the command's three pushable outputs, the excluded one, the other build's
 * outputs and watch-exec's stderr.
 */
export async function buildSideBySide(
  local: LocalCache,
  cacheName: string,
  mode: string,
): Promise<{ own: string[]; skipped: string; others: string[]; stderr: string }> {
  const { world, work } = local;
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
      cacheName,
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
