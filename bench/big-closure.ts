import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bigInputSizes, buildBigInput, type BigInput } from './input.js';
import { measure, median, runCommand, treeBytes } from './measure.js';
import { megabytes, seconds } from './report.js';
import {
  BIG_TIMEOUT_MS,
  GOALS,
  LEVEL,
  NIX_FEATURES,
  RUNS,
  SCALE,
  cacheDir,
  cachixOk,
  check,
  log,
  step,
  sync,
  targets,
  throughput,
  workDir,
} from './harness.js';

let inputSummary = 'Input: not built.';

/** One line for the report: what the big closure held. */
export function describeInput(): string {
  return inputSummary;
}

interface PushRun {
  wallMs: number;
  outputBytes: number;
  peakRssBytes: number;
  largestProcessRssBytes: number;
}

/** Runs one way of pushing BENCH_RUNS times into fresh output; median wall, largest memory. */
async function timedPushes(
  name: string,
  once: (run: number) => Promise<PushRun>,
  narBytes: number,
  note?: string,
): Promise<PushRun | undefined> {
  return step(name, async () => {
    const runs: PushRun[] = [];
    for (let run = 0; run < RUNS; run++) {
      await sync();
      const result = await once(run);
      log(
        `   run ${run + 1}: ${seconds(result.wallMs)}, ${(narBytes / 1e6 / (result.wallMs / 1000)).toFixed(1)} MB/s, output ${megabytes(result.outputBytes)}, peak RSS ${megabytes(result.peakRssBytes)} (largest process ${megabytes(result.largestProcessRssBytes)})`,
      );
      runs.push(result);
    }
    const summary = {
      wallMs: median(runs.map((run) => run.wallMs)),
      outputBytes: median(runs.map((run) => run.outputBytes)),
      peakRssBytes: Math.max(...runs.map((run) => run.peakRssBytes)),
      largestProcessRssBytes: Math.max(...runs.map((run) => run.largestProcessRssBytes)),
    };
    throughput.push({ name, narBytes, note, ...summary });
    return summary;
  });
}

function ratioTarget(
  name: string,
  value: number | undefined,
  goal: string,
  pass: (value: number) => boolean,
  format = (v: number) => `${v.toFixed(2)}×`,
): void {
  targets.push({ name, measured: value === undefined ? '—' : format(value), goal, pass: value === undefined ? undefined : pass(value) });
}

export async function bigClosure(): Promise<void> {
  const big = await step(`build the input (scale ${SCALE}; built once per machine, then cached by Nix)`, () =>
    buildBigInput(SCALE, 4 * 3600_000),
  );
  if (!big) {
    for (const name of ['ours / floor time', 'speedup vs nix copy', 'output size vs nix copy', 'peak RSS of cachix push'])
      ratioTarget(name, undefined, '', () => false);
    return;
  }
  const sizes = bigInputSizes(SCALE);
  inputSummary =
    `Input (scale ${SCALE}): ${big.closure.length} store paths, ${megabytes(big.narBytes)} of NAR (\`nix path-info -S\`): ` +
    `${sizes.files} small text files in 8 paths, up to ${megabytes(sizes.libsBytes)} of this machine's .so files, ` +
    `a ${megabytes(sizes.logBytes)} log, ${megabytes(sizes.randomBytes)} of random bytes.`;
  log(
    `   ${big.top}: ${big.closure.length} paths, NAR size of the closure ${megabytes(big.narBytes)} (${big.narBytes} bytes, nix path-info -S), built in ${seconds(big.buildMs)}`,
  );
  await step('warm the page cache (nix-store --dump of each path to /dev/null)', async () => {
    check(
      'nix-store --dump',
      await runCommand('bash', ['-c', 'for p in "$@"; do nix-store --dump "$p" > /dev/null; done', 'bash', ...big.closure], {
        timeoutMs: BIG_TIMEOUT_MS,
      }),
    );
  });
  const keys = await step('make a signing key for nix copy', async () => {
    const dir = join(workDir(), 'keys');
    await mkdir(dir, { recursive: true });
    check(
      'nix-store --generate-binary-cache-key',
      await runCommand('nix-store', ['--generate-binary-cache-key', 'bench-1', join(dir, 'secret'), join(dir, 'public')], {
        timeoutMs: 30_000,
      }),
    );
    return join(dir, 'secret');
  });
  const floor = await timedPushes(
    `floor: nix-store --dump | zstd -T0 -${LEVEL}`,
    (run) => floorRun(big, run),
    big.narBytes,
    'no hashing, no signing, one stream',
  );
  const nixCopy = keys
    ? await timedPushes(
        `nix copy, zstd -${LEVEL} (Nix's defaults)`,
        (run) => nixCopyRun(big, keys, run, false),
        big.narBytes,
        'compression-level, signed',
      )
    : undefined;
  if (keys)
    await timedPushes(
      `nix copy, zstd -${LEVEL}, parallel-compression=true`,
      (run) => nixCopyRun(big, keys, run, true),
      big.narBytes,
      'for reference',
    );
  const ours = await timedPushes(
    `cachix push -m zstd -l ${LEVEL}`,
    (run) => oursRun(big, run),
    big.narBytes,
    'file cache, signed, default -j',
  );
  ratioTarget(
    'cachix push time / floor time',
    ours && floor ? ours.wallMs / floor.wallMs : undefined,
    `≤ ${GOALS.timeVsFloor}×`,
    (v) => v <= GOALS.timeVsFloor,
  );
  ratioTarget(
    'speedup vs nix copy (its time / ours)',
    ours && nixCopy ? nixCopy.wallMs / ours.wallMs : undefined,
    `≥ ${GOALS.speedupVsNixCopy}×`,
    (v) => v >= GOALS.speedupVsNixCopy,
  );
  ratioTarget(
    'output size vs nix copy (ours / its)',
    ours && nixCopy ? ours.outputBytes / nixCopy.outputBytes : undefined,
    `≤ ${GOALS.sizeVsNixCopy}×`,
    (v) => v <= GOALS.sizeVsNixCopy,
  );
  ratioTarget(
    'peak RSS of cachix push (process tree)',
    ours?.peakRssBytes,
    `< ${megabytes(GOALS.peakRssBytes)}`,
    (v) => v < GOALS.peakRssBytes,
    (v) => `${megabytes(v)} (${(v / GOALS.peakRssBytes).toFixed(2)}× goal)`,
  );
}

async function floorRun(big: BigInput, run: number): Promise<PushRun> {
  const output = join(workDir(), `floor-${run}.nar.zst`);
  try {
    const script = `set -o pipefail; out="$1"; shift; for p in "$@"; do nix-store --dump "$p"; done | zstd -T0 -q -${LEVEL} -c > "$out"`;
    const result = check(
      'nix-store --dump | zstd',
      await measure('bash', ['-c', script, 'bash', output, ...big.closure], { timeoutMs: BIG_TIMEOUT_MS }),
    );
    return {
      wallMs: result.wallMs,
      peakRssBytes: result.peakRssBytes,
      largestProcessRssBytes: result.largestProcessRssBytes,
      outputBytes: (await stat(output)).size,
    };
  } finally {
    await rm(output, { force: true });
  }
}

async function nixCopyRun(big: BigInput, secretKey: string, run: number, parallel: boolean): Promise<PushRun> {
  const dir = join(workDir(), `nix-copy-${parallel ? 'parallel-' : ''}${run}`);
  try {
    const url = `file://${dir}?compression=zstd&compression-level=${LEVEL}&secret-key=${secretKey}${parallel ? '&parallel-compression=true' : ''}`;
    const result = check('nix copy', await measure('nix', [...NIX_FEATURES, 'copy', '--to', url, big.top], { timeoutMs: BIG_TIMEOUT_MS }));
    return {
      wallMs: result.wallMs,
      peakRssBytes: result.peakRssBytes,
      largestProcessRssBytes: result.largestProcessRssBytes,
      outputBytes: await treeBytes(dir),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function oursRun(big: BigInput, run: number): Promise<PushRun> {
  const name = `bench-big-${run}`;
  try {
    await cachixOk(['create', name], 60_000);
    const result = await cachixOk(['push', name, big.top, '-m', 'zstd', '-l', String(LEVEL)], BIG_TIMEOUT_MS);
    return {
      wallMs: result.wallMs,
      peakRssBytes: result.peakRssBytes,
      largestProcessRssBytes: result.largestProcessRssBytes,
      outputBytes: await treeBytes(cacheDir(name)),
    };
  } finally {
    await rm(cacheDir(name), { recursive: true, force: true });
  }
}
