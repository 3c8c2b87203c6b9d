/**
 * `npm run bench`: Nix's own `nix copy`, `cachix push` and the floor (`nix-store --dump | zstd`) on
 * the same input in one run (and the honest floor: the hashing and writing every pusher must do),
 * then 10,000 small paths (first push and no-op, file cache and nginx, against nix copy), one path
 * of 50,000 files, a copy of the small paths file -> file (against nix copy --from --to), verify and
 * start-up time; prints a
 * Markdown table (also written to bench/results.md) with each target's PASS/MISS.
 *
 * Environment: BENCH_SCALE (default 1: a closure of about 1 GB of NAR), BENCH_LEVEL (zstd level,
 * default 3, what Nix uses when compression-level is unset), BENCH_RUNS (timed runs of each push of
 * the big closure, median reported; default 1), BENCH_SMALL_PATHS (default 10,000 at full scale),
 * BENCH_MANY_FILES (default 50,000), BENCH_TIMEOUT_S (per push of the big closure),
 * BENCH_SKIP_BUILD=1 (use dist/ as it is), BENCH_ONLY=big,small,copy,many,startup,daemon,daemon-memory,watch-memory
 * (only those workloads), BENCH_HOOK_BUILDS (builds timed with and without the daemon's post-build-hook, default 50),
 * BENCH_DAEMON_PATHS (distinct paths the daemon pushes while its peak RSS is read, default 2,000), BENCH_WATCH_PATHS
 * (paths one nix-build makes while watch-store pushes them and its resident memory is sampled, default 500).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bigClosure, describeInput } from './big-closure.js';
import { copySmallPaths } from './copy-paths.js';
import { daemonHook } from './daemon-hook.js';
import { daemonMemory } from './daemon-memory.js';
import {
  LEVEL,
  ROOT,
  RUNS,
  SCALE,
  SMALL_PATHS,
  check,
  failures,
  log,
  messageOf,
  setWorkDir,
  step,
  targets,
  timings,
  throughput,
  workDir,
} from './harness.js';
import { runCommand } from './measure.js';
import { describeMachine, renderMarkdown } from './report.js';
import { manyFilesPath } from './many-files.js';
import { manySmallPaths } from './small-paths.js';
import { startUp } from './startup.js';
import { watchMemory } from './watch-memory.js';

/** BENCH_ONLY=big,small,copy,many,startup,daemon,daemon-memory,watch-memory runs only those workloads (all when unset). */
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);

async function main(): Promise<number> {
  const started = performance.now();
  const machine = await describeMachine();
  log(
    `cachix bench: scale ${SCALE}, zstd level ${LEVEL}, ${RUNS} run(s) per push, ${SMALL_PATHS} small paths; ${machine.cores} cores, load ${machine.loadAtStart}`,
  );
  if (process.env.BENCH_SKIP_BUILD !== '1') {
    await step('npm run build', async () => {
      const result = await runCommand('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, timeoutMs: 300_000 });
      // tsc still emits when another engineer's file has a type error; go on if dist/ is there.
      if (result.code !== 0 && !existsSync(join(ROOT, 'dist', 'main.js'))) check('tsc', result);
      if (result.code !== 0) log(`   tsc reported errors, using what it emitted:\n${result.stdout.trim().slice(0, 1500)}`);
    });
  }
  // This machine may be offline: without this, Nix asks cache.nixos.org about every path it does
  // not have (5 s of retries) — in cachix's `nix path-info` of a missing path, for one.
  process.env.NIX_CONFIG = `${process.env.NIX_CONFIG ?? ''}\nsubstituters =\n`;
  setWorkDir(await mkdtemp(join(tmpdir(), 'cachix-bench-')));
  try {
    const sections = {
      big: bigClosure,
      small: manySmallPaths,
      copy: copySmallPaths,
      many: manyFilesPath,
      startup: startUp,
      daemon: daemonHook,
      'daemon-memory': daemonMemory,
      'watch-memory': watchMemory,
    };
    for (const [name, section] of Object.entries(sections)) if (ONLY.length === 0 || ONLY.includes(name)) await section();
  } finally {
    await rm(workDir(), { recursive: true, force: true });
  }
  const markdown = renderMarkdown({
    machine,
    settings:
      `${describeInput()}  \nzstd level ${LEVEL} for everyone; median of ${RUNS} run(s) per push; ` +
      `peak RSS is the process tree's (sampled VmRSS sum, at least GNU time's %M).`,
    throughput,
    timings,
    targets,
    failures,
    totalMs: performance.now() - started,
  });
  process.stdout.write('\n' + markdown);
  await writeFile(join(ROOT, 'bench', 'results.md'), markdown);
  log(`\nwritten to bench/results.md`);
  const missed = targets.filter((target) => target.pass === false).length;
  if (missed > 0) log(`${missed} target(s) missed`);
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  log(`bench failed: ${messageOf(error)}`);
  return 1;
});
