// What the daemon's post-build-hook costs the builds it watches: `nix-build` of BENCH_HOOK_BUILDS
// independent derivations (default 50, 0.3 s each) with the hook set and without, alternately,
// best of two each (one run can land in a burst of load on a shared machine).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CACHIX_BIN, cachixEnv, cachixOk, check, envNumber, log, ratioTarget, step, timings, workDir } from './harness.js';
import { freshSalt, writeSaltedDerivations } from './input.js';
import { runCommand } from './measure.js';

const BUILDS = Math.round(envNumber('BENCH_HOOK_BUILDS', 50));
/** The hook's overhead on builds: Nix running a do-nothing sh hook alone costs about 1.06x here. */
const GOAL_RATIO = 1.1;

export async function daemonHook(): Promise<void> {
  const file = join(workDir(), 'hook-builds.nix');
  await writeSaltedDerivations(file, 'bench-hook', 'PATH=/bin:/usr/bin; sleep 0.3; echo ${toString i} > $out', BUILDS);
  const socket = join(workDir(), 'hook-daemon', 'cachix-daemon.sock');
  const build = async (hooked: boolean): Promise<number> => {
    const env = { ...process.env, NIX_CONFIG: `substituters =\n${hooked ? `post-build-hook = ${socket}.post-build-hook\n` : ''}` };
    const salt = freshSalt();
    const args = [file, '--argstr', 'salt', salt, '--no-out-link', '--quiet'];
    return check('nix-build', await runCommand('nix-build', args, { env, timeoutMs: 600_000 })).wallMs;
  };
  const walls = await step(`${BUILDS} builds of 0.3 s, with the daemon's post-build-hook and without (best of two each)`, async () => {
    await cachixOk(['create', 'bench-hook'], 60_000);
    const daemon = spawn(process.execPath, [CACHIX_BIN, 'daemon', 'run', 'bench-hook', '--socket', socket], {
      env: cachixEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => daemon.on('close', resolve));
    let stderr = '';
    daemon.stderr.on('data', (chunk) => (stderr += chunk));
    try {
      await new Promise<void>((resolve, reject) => {
        daemon.stderr.on('data', () => /listening on/.test(stderr) && resolve());
        void exited.then(() => reject(new Error(`the daemon exited: ${stderr.trim()}`)));
      });
      const without = [await build(false)];
      const withHook = [await build(true)];
      without.push(await build(false));
      withHook.push(await build(true));
      log(`   ${without.map(Math.round).join(', ')} ms without the hook, ${withHook.map(Math.round).join(', ')} ms with it`);
      return { without: Math.min(...without), withHook: Math.min(...withHook) };
    } finally {
      await cachixOk(['daemon', 'stop', '--socket', socket], 600_000).catch(() => daemon.kill('SIGKILL'));
      await exited;
    }
  });
  timings.push({ name: `${BUILDS} builds of 0.3 s without the hook (best of two)`, wallMs: walls?.without });
  timings.push({ name: `${BUILDS} builds of 0.3 s with the daemon's post-build-hook (best of two)`, wallMs: walls?.withHook });
  ratioTarget(
    `${BUILDS} builds with the daemon's post-build-hook / without`,
    walls && walls.withHook / walls.without,
    `≤ ${GOAL_RATIO}×`,
    (ratio) => ratio <= GOAL_RATIO,
  );
}
