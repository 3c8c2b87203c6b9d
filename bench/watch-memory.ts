// watch-store's resident memory while BENCH_WATCH_PATHS (default 500) paths are built and pushed
// one after another: a watcher left running on a CI runner or a workstation must not grow with
// every path it has pushed. Sampled every half second; growth is the last sample against the
// first one after 50 paths were pushed (start-up and the first uploads warm the heap).
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CACHIX_BIN, cacheDir, cachixEnv, cachixOk, check, envNumber, log, ratioTarget, step, timings, workDir } from './harness.js';
import { residentBytes } from '../test/helpers/peak-rss.js';
import { freshSalt, writeSaltedDerivations } from './input.js';
import { runCommand } from './measure.js';

const PATHS = Math.round(envNumber('BENCH_WATCH_PATHS', 500));
/** What the resident memory may grow from warm-up to the last path pushed. */
const GOAL_GROWTH_MIB = 50;
const WARM_AFTER = Math.min(50, Math.floor(PATHS / 10));

const residentMiB = async (pid: number): Promise<number> => (await residentBytes(pid)) / 2 ** 20;

export async function watchMemory(): Promise<void> {
  const file = join(workDir(), 'watch-paths.nix');
  await writeSaltedDerivations(file, 'bench-watch', '/usr/bin/head -c 2000 /dev/urandom > $out', PATHS);
  const measured = await step(`watch-store's resident memory while ${PATHS} paths are built and pushed`, async () => {
    await cachixOk(['create', 'bench-watch'], 60_000);
    const dir = cacheDir('bench-watch');
    const watcher = spawn(process.execPath, [CACHIX_BIN, 'watch-store', 'bench-watch'], {
      env: cachixEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => watcher.on('close', resolve));
    let stderr = '';
    watcher.stderr.on('data', (chunk) => (stderr += chunk));
    const samples: Array<{ pushed: number; rss: number }> = [];
    const pushedNow = async (): Promise<number> => (await readdir(dir)).filter((name) => name.endsWith('.narinfo')).length;
    try {
      await new Promise<void>((resolve, reject) => {
        watcher.stderr.on('data', () => /watching/.test(stderr) && resolve());
        void exited.then(() => reject(new Error(`watch-store exited: ${stderr.trim()}`)));
      });
      const started = performance.now();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push({ pushed: await pushedNow(), rss: await residentMiB(watcher.pid!) });
          await delay(500);
        }
      })();
      const salt = freshSalt();
      const env = { ...process.env, NIX_CONFIG: 'substituters =' };
      const built = check(
        'nix-build',
        await runCommand('nix-build', [file, '--argstr', 'salt', salt, '--no-out-link', '--quiet'], { env, timeoutMs: 1_800_000 }),
      );
      const outputs = built.stdout.trim().split('\n');
      const deadline = Date.now() + 600_000;
      while ((await pushedNow()) < outputs.length) {
        if (Date.now() > deadline) throw new Error(`watch-store pushed ${await pushedNow()} of ${outputs.length} paths in 10 minutes`);
        await delay(200);
      }
      sampling = false;
      await sampler;
      samples.push({ pushed: await pushedNow(), rss: await residentMiB(watcher.pid!) });
      const warm = samples.find((sample) => sample.pushed >= WARM_AFTER) ?? samples[0]!;
      const last = samples.at(-1)!;
      const peak = Math.max(...samples.map((sample) => sample.rss));
      log(
        `   RSS ${warm.rss.toFixed(1)} MiB after ${warm.pushed} paths, ${last.rss.toFixed(1)} MiB after ${last.pushed}, ` +
          `peak ${peak.toFixed(1)} MiB (${samples.length} samples)`,
      );
      return { wallMs: performance.now() - started, growth: last.rss - warm.rss, peak };
    } finally {
      watcher.kill('SIGTERM');
      await exited;
    }
  });
  timings.push({
    name: `watch-store while ${PATHS} paths are built and pushed (its peak RSS)`,
    wallMs: measured?.wallMs,
    peakRssBytes: measured && measured.peak * 2 ** 20,
  });
  ratioTarget(
    `watch-store's RSS growth over ${PATHS} built paths, after the first ${WARM_AFTER}`,
    measured?.growth,
    `< ${GOAL_GROWTH_MIB} MiB`,
    (growth) => growth < GOAL_GROWTH_MIB,
    (growth) => `${growth.toFixed(1)} MiB`,
  );
}
