import { rm, stat } from 'node:fs/promises';
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
  ratioTarget,
  step,
  sync,
  throughput,
  timings,
  workDir,
  nixCopySecretKey,
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

export async function bigClosure(): Promise<void> {
  const big = await step(`build the input (scale ${SCALE}; built once per machine, then cached by Nix)`, () =>
    buildBigInput(SCALE, 4 * 3600_000),
  );
  if (!big) {
    for (const name of [
      'ours / honest floor time',
      'speedup vs nix copy',
      'output size vs nix copy',
      'peak RSS of cachix push',
      'push --listings time / push time',
    ])
      ratioTarget(`big closure: ${name}`, undefined, '', () => false);
    verifyTarget();
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
  const keys = await nixCopySecretKey('', 'bench-1');
  const floor = await timedPushes(
    `old floor: nix-store --dump | zstd -T0 -${LEVEL}`,
    (run) => floorRun(big, run, false),
    big.narBytes,
    'no hashing, no signing, one stream',
  );
  const honestFloor = await timedPushes(
    `honest floor: dump | tee >(sha256) | zstd -T2 -${LEVEL} | tee >(sha256) > file`,
    (run) => floorRun(big, run, true),
    big.narBytes,
    'what every correct pusher does: NarHash check, FileHash, the write (openssl sha256)',
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
  const withListings = await timedPushes(
    `cachix push -m zstd -l ${LEVEL} --listings`,
    (run) => oursRun(big, run, ['--listings']),
    big.narBytes,
    'file cache, a .ls per path computed while the NAR is produced',
  );
  ratioTarget(
    'big closure: push --listings time / push time',
    ours && withListings ? withListings.wallMs / ours.wallMs : undefined,
    `≤ ${GOALS.listingsVsPlain}×`,
    (v) => v <= GOALS.listingsVsPlain,
  );
  ratioTarget(
    'big closure: cachix push time / honest floor time',
    ours && honestFloor ? ours.wallMs / honestFloor.wallMs : undefined,
    `≤ ${GOALS.timeVsHonestFloor}×` + (ours && floor ? ` (old floor: ${(ours.wallMs / floor.wallMs).toFixed(2)}×)` : ''),
    (v) => v <= GOALS.timeVsHonestFloor,
  );
  ratioTarget(
    'big closure: speedup vs nix copy (its time / ours)',
    ours && nixCopy ? nixCopy.wallMs / ours.wallMs : undefined,
    `≥ ${GOALS.speedupVsNixCopy}×`,
    (v) => v >= GOALS.speedupVsNixCopy,
  );
  ratioTarget(
    'big closure: output size vs nix copy (ours / its)',
    ours && nixCopy ? ours.outputBytes / nixCopy.outputBytes : undefined,
    `≤ ${GOALS.sizeVsNixCopy}×`,
    (v) => v <= GOALS.sizeVsNixCopy,
  );
  ratioTarget(
    'big closure: peak RSS of cachix push (process tree)',
    ours?.peakRssBytes,
    `< ${megabytes(GOALS.peakRssBytes)}`,
    (v) => v < GOALS.peakRssBytes,
    (v) => `${megabytes(v)} (${(v / GOALS.peakRssBytes).toFixed(2)}× goal)`,
  );
  verifyTarget();
}

/**
 * The floor: every NAR dumped into one zstd stream. The honest floor also does what a correct
 * pusher cannot skip: sha256 of the NAR (checked against NarHash), of the compressed output
 * (FileHash), both with openssl (coreutils' sha256sum has no SHA extensions here), and zstd on
 * two threads as a push of one NAR gets.
 */
async function floorRun(big: BigInput, run: number, honest: boolean): Promise<PushRun> {
  const output = join(workDir(), `floor-${run}.nar.zst`);
  try {
    const dumps = 'for p in "$@"; do nix-store --dump "$p"; done';
    const script = honest
      ? `set -o pipefail; out="$1"; shift; ${dumps} | tee >(openssl dgst -sha256 > "$out.narhash") | zstd -T2 -q -${LEVEL} -c | tee >(openssl dgst -sha256 > "$out.filehash") > "$out"; wait`
      : `set -o pipefail; out="$1"; shift; ${dumps} | zstd -T0 -q -${LEVEL} -c > "$out"`;
    const result = check(
      honest ? 'the honest floor' : 'nix-store --dump | zstd',
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
    await rm(`${output}.narhash`, { force: true });
    await rm(`${output}.filehash`, { force: true });
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

/** Target 8, timed on the first run's cache before it is removed. */
let verifyTimes: { ours?: number | undefined; nix?: number | undefined } = {};

async function oursRun(big: BigInput, run: number, extraFlags: readonly string[] = []): Promise<PushRun> {
  const name = `bench-big-${run}${extraFlags.length ? '-extras' : ''}`;
  try {
    const created = await cachixOk(['create', name], 60_000);
    const result = await cachixOk(['push', name, big.top, '-m', 'zstd', '-l', String(LEVEL), ...extraFlags], BIG_TIMEOUT_MS);
    const pushed: PushRun = {
      wallMs: result.wallMs,
      peakRssBytes: result.peakRssBytes,
      largestProcessRssBytes: result.largestProcessRssBytes,
      outputBytes: await treeBytes(cacheDir(name)),
    };
    if (run === 0 && extraFlags.length === 0) verifyTimes = await timeVerify(name, big, created.stdout.trim());
    return pushed;
  } finally {
    await rm(cacheDir(name), { recursive: true, force: true });
  }
}

async function timeVerify(name: string, big: BigInput, publicKey: string): Promise<typeof verifyTimes> {
  const ours = await step('verify: cachix verify -r of the big closure', () => cachixOk(['verify', name, '-r', big.top], BIG_TIMEOUT_MS));
  const nix = await step('verify: nix store verify -r of the big closure, same cache', async () =>
    check(
      'nix store verify',
      await measure(
        'nix',
        [...NIX_FEATURES, 'store', 'verify', '--store', `file://${cacheDir(name)}`, '--trusted-public-keys', publicKey, '-r', big.top],
        { timeoutMs: BIG_TIMEOUT_MS },
      ),
    ),
  );
  timings.push({ name: 'big closure: cachix verify -r', wallMs: ours?.wallMs, peakRssBytes: ours?.peakRssBytes });
  timings.push({ name: 'big closure: nix store verify -r', wallMs: nix?.wallMs, peakRssBytes: nix?.peakRssBytes, note: 'the peer' });
  return { ours: ours?.wallMs, nix: nix?.wallMs };
}

export function verifyTarget(): void {
  const { ours, nix } = verifyTimes;
  ratioTarget(
    `verify of the big closure: ours / nix store verify (ours ${seconds(ours)}, Nix ${seconds(nix)})`,
    ours !== undefined && nix !== undefined ? ours / nix : undefined,
    `≤ ${GOALS.verifyVsNix}×`,
    (v) => v <= GOALS.verifyVsNix,
  );
}
