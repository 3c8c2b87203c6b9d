// The daemon's peak resident memory while it pushes BENCH_DAEMON_PATHS (default 2,000) distinct
// real paths handed over in one `daemon push --wait`: what a CI runner's daemon holds at most.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHIX_BIN, cachixEnv, cachixOk, check, envNumber, log, step, timings, workDir } from './harness.js';
import { freshSalt, writeSaltedDerivations } from './input.js';
import { runCommand } from './measure.js';

const PATHS = Math.round(envNumber('BENCH_DAEMON_PATHS', 2000));

/** VmHWM: the kernel's high-water mark of the process's resident memory (worker threads included). */
async function peakResidentBytes(pid: number): Promise<number> {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmHWM for ${pid}`);
  return Number(match[1]) * 1024;
}

export async function daemonMemory(): Promise<void> {
  const file = join(workDir(), 'daemon-paths.nix');
  await writeSaltedDerivations(file, 'bench-daemon', 'echo ${toString i} ${salt} > $out', PATHS);
  const salt = freshSalt();
  const built = await step(`build ${PATHS} distinct paths`, async () => {
    const result = check(
      'nix-build',
      await runCommand('nix-build', [file, '--argstr', 'salt', salt, '--no-out-link', '--quiet'], { timeoutMs: 1_800_000 }),
    );
    return result.stdout.trim().split('\n');
  });
  if (!built) return;
  const socket = join(workDir(), 'memory-daemon', 'cachix-daemon.sock');
  const measured = await step(`the daemon pushing ${PATHS} paths handed over in one daemon push --wait`, async () => {
    await cachixOk(['create', 'bench-daemon'], 60_000);
    const daemon = spawn(process.execPath, [CACHIX_BIN, 'daemon', 'run', 'bench-daemon', '--socket', socket, '--quiet'], {
      env: cachixEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => daemon.on('close', resolve));
    let stderr = '';
    daemon.stderr.on('data', (chunk) => (stderr += chunk));
    try {
      const before = await (async () => {
        for (;;) {
          const listening = await runCommand('test', ['-S', socket], { timeoutMs: 5_000 });
          if (listening.code === 0) return peakResidentBytes(daemon.pid!);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      const pushed = await runCommand(process.execPath, [CACHIX_BIN, 'daemon', 'push', '--socket', socket, '--wait', '--quiet'], {
        env: cachixEnv(),
        input: built.join('\n'),
        timeoutMs: 1_800_000,
      });
      check('daemon push --wait', pushed);
      const peak = await peakResidentBytes(daemon.pid!);
      log(
        `   ${pushed.stderr.trim()}; daemon peak RSS ${(peak / 2 ** 20).toFixed(1)} MiB (${(before / 2 ** 20).toFixed(1)} MiB when it started listening)`,
      );
      return { wallMs: pushed.wallMs, peak };
    } finally {
      await cachixOk(['daemon', 'stop', '--socket', socket], 600_000).catch(() => daemon.kill('SIGKILL'));
      await exited;
      if (stderr.trim()) log(`   daemon: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
  });
  timings.push({
    name: `the daemon pushing ${PATHS} distinct paths (one daemon push --wait; its peak RSS)`,
    wallMs: measured?.wallMs,
    peakRssBytes: measured?.peak,
  });
}
