import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { median, runCommand } from './measure.js';
import { seconds } from './report.js';
import { CACHIX_BIN, GOALS, cachix, cachixEnv, cachixOk, check, log, repeat, step, targets, timings, workDir } from './harness.js';

export async function startUp(): Promise<void> {
  const bare = await step('start-up floor: node -e 0, median of 10', async () => {
    const once = async () => check('node -e 0', await runCommand(process.execPath, ['-e', '0'], { timeoutMs: 30_000 }));
    await once();
    return median(await repeat(10, once));
  });
  timings.push({ name: 'start-up floor: `node -e 0` (median of 10)', wallMs: bare, note: 'for reference' });
  const help = await step('start-up: cachix --help, median of 10 (after one warm-up)', async () => {
    const once = async () =>
      check('cachix --help', await runCommand(process.execPath, [CACHIX_BIN, '--help'], { env: cachixEnv(), timeoutMs: 30_000 }));
    await once();
    const walls = await repeat(10, once);
    log(`   runs: ${walls.map((wall) => Math.round(wall)).join(' ')} ms`);
    return median(walls);
  });
  timings.push({ name: 'start-up: `cachix --help` (median of 10)', wallMs: help });
  startUpTarget('start-up: `cachix --help`', help, bare, GOALS.helpMs);

  const tiny = await step('add a tiny path for push start-up (nix-store --add)', async () => {
    const file = join(workDir(), 'cachix-bench-startup.txt');
    await writeFile(file, 'cachix bench: a tiny path for timing push start-up\n');
    return check('nix-store --add', await runCommand('nix-store', ['--add', file], { timeoutMs: 30_000 })).stdout.trim();
  });
  if (
    !tiny ||
    !(await step('create the file cache bench-startup and push the tiny path', async () => {
      await cachixOk(['create', 'bench-startup'], 60_000);
      return cachixOk(['push', 'bench-startup', tiny], 60_000);
    }))
  )
    return;
  const missing = await step('start-up: cachix push of a path that does not exist, to its error (median of 5)', async () => {
    const walls = await repeat(5, async () => {
      const result = await cachix(['push', 'bench-startup', '/nix/store/00000000000000000000000000000000-cachix-bench-missing'], 30_000);
      if (result.timedOut || result.code === 0)
        throw new Error(`expected an error, got exit ${result.code}${result.timedOut ? ' (timed out)' : ''}`);
      return result;
    });
    log(`   runs: ${walls.map((wall) => Math.round(wall)).join(' ')} ms`);
    return median(walls);
  });
  timings.push({ name: 'start-up: `cachix push` of a missing path, to its error (median of 5)', wallMs: missing });
  const pushed = await step('start-up: cachix push of one already-pushed tiny path (median of 5)', async () => {
    const walls = await repeat(5, () => cachixOk(['push', 'bench-startup', tiny], 30_000));
    log(`   runs: ${walls.map((wall) => Math.round(wall)).join(' ')} ms`);
    return median(walls);
  });
  timings.push({ name: 'start-up: `cachix push` of one already-pushed path (median of 5)', wallMs: pushed });
  startUpTarget('start-up: `cachix push` of one path already in the cache', pushed, bare, GOALS.pushOneMs);
}

/**
 * The goals were set where `node -e 0` took NODE_FLOOR_AT_GOAL_MS; on a slower or busier machine
 * Node's own start moves every time, so the verdict is on what we add above it, printed beside
 * the absolute time.
 */
function startUpTarget(name: string, wallMs: number | undefined, nodeMs: number | undefined, goalMs: number): void {
  const allowance = goalMs - GOALS.nodeFloorAtGoalMs;
  const above = wallMs !== undefined && nodeMs !== undefined ? wallMs - nodeMs : undefined;
  targets.push({
    name: `${name}: time above \`node -e 0\` (ours ${seconds(wallMs)}, node ${seconds(nodeMs)})`,
    measured: seconds(above),
    goal: `≤ ${seconds(allowance)} (${seconds(goalMs)} where node took ${seconds(GOALS.nodeFloorAtGoalMs)})`,
    pass: above === undefined ? undefined : above <= allowance,
  });
}
