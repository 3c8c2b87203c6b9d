import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { measure, runCommand, type Measured, type RunResult } from './measure.js';
import { seconds, type TargetRow, type ThroughputRow, type TimingRow } from './report.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const CACHIX_BIN = join(ROOT, 'bin', 'cachix');
export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command'];

export function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${text} is not a positive number`);
  return value;
}

export const SCALE = envNumber('BENCH_SCALE', 1);
export const LEVEL = envNumber('BENCH_LEVEL', 3);
export const RUNS = Math.round(envNumber('BENCH_RUNS', 1));
export const SMALL_PATHS = Math.round(envNumber('BENCH_SMALL_PATHS', SCALE >= 1 ? 10_000 : Math.max(200, Math.round(10_000 * SCALE))));
export const BIG_TIMEOUT_MS = envNumber('BENCH_TIMEOUT_S', 120 + 900 * SCALE) * 1000;
export const SMALL_TIMEOUT_MS = 60_000 + 60 * SMALL_PATHS;

/** The goals (issue 14): each a same-run ratio against a peer or a floor, so a noisy machine shifts both sides. */
export const GOALS = {
  /** Big closure: ours / the honest floor (dump, sha256 of the NAR, zstd, sha256 of the output, write). */
  timeVsHonestFloor: 1.05,
  speedupVsNixCopy: 1.5,
  /** Output never larger than nix copy's at the same method and level. */
  sizeVsNixCopy: 1.0,
  peakRssBytes: 300e6,
  /** Big closure with --listings: its time / without (the listing is built from the NAR as it streams). */
  listingsVsPlain: 1.05,
  /** Many small paths, first push to a file cache: ours / nix copy's. */
  smallFirstVsNixCopy: 0.5,
  /** Many small paths to nginx, first push: ours / nix copy's. */
  smallHttpFirstVsNixCopy: 1.0,
  /** No-op re-push: ours / nix copy's (to nginx: nix copy with its narinfo cache warm). */
  noopVsNixCopy: 1.0,
  smallPeakRssBytes: 150e6,
  /** One path of tens of thousands of files: ours / nix copy's, and ours / dump | zstd. */
  manyFilesVsNixCopy: 1.0,
  manyFilesVsFloor: 1.1,
  /** 60 ms above `node -e 0` (issue 28), written as the total where node took nodeFloorAtGoalMs. */
  pushOneMs: 113,
  /** cachix copy of the small paths file -> file: ours / nix copy --from --to. */
  copyVsNixCopy: 1.0,
  verifyVsNix: 1.0,
  helpMs: 200,
  /** `node -e 0` on the machine where the start-up goals above were set. */
  nodeFloorAtGoalMs: 53,
};

/** A target measured as a ratio (or a value) against its goal. */
export function ratioTarget(
  name: string,
  value: number | undefined,
  goal: string,
  pass: (value: number) => boolean,
  format = (v: number) => `${v.toFixed(2)}×`,
): void {
  targets.push({ name, measured: value === undefined ? '—' : format(value), goal, pass: value === undefined ? undefined : pass(value) });
}

export const failures: string[] = [];
export const throughput: ThroughputRow[] = [];
export const timings: TimingRow[] = [];
export const targets: TargetRow[] = [];

export function log(line: string): void {
  process.stderr.write(line + '\n');
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A step that fails is reported and the run goes on; the exit code says so at the end. */
export async function step<T>(name: string, body: () => Promise<T>): Promise<T | undefined> {
  log(`\n== ${name}`);
  const started = performance.now();
  try {
    const value = await body();
    log(`   ok (${seconds(performance.now() - started)})`);
    return value;
  } catch (error) {
    const message = messageOf(error).split('\n').slice(0, 12).join('\n     ');
    failures.push(`${name}: ${message.split('\n')[0]}`);
    log(`   FAILED: ${message}`);
    return undefined;
  }
}

export function check<T extends RunResult>(what: string, result: T): T {
  if (result.timedOut) throw new Error(`${what} timed out after ${seconds(result.wallMs)}`);
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(-1500)}`);
  return result;
}

let work = '';

/** The run's temp dir: caches, keys and outputs; removed at the end. */
export function workDir(): string {
  return work;
}

export function setWorkDir(dir: string): void {
  work = dir;
}
export const cachixEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  CI: 'true',
  XDG_CONFIG_HOME: join(workDir(), 'config'),
  XDG_DATA_HOME: join(work, 'data'),
});
export const cacheDir = (name: string): string => join(work, 'data', 'cachix', 'caches', name);

export function cachix(args: string[], timeoutMs: number): Promise<Measured> {
  return measure(process.execPath, [CACHIX_BIN, ...args], { env: cachixEnv(), timeoutMs });
}

export async function cachixOk(args: string[], timeoutMs: number): Promise<Measured> {
  return check(`cachix ${args.slice(0, 2).join(' ')}`, await cachix(args, timeoutMs));
}

export async function sync(): Promise<void> {
  await runCommand('sync', [], { timeoutMs: 120_000 });
}

export async function repeat(times: number, body: () => Promise<RunResult>): Promise<number[]> {
  const walls: number[] = [];
  for (let index = 0; index < times; index++) walls.push((await body()).wallMs);
  return walls;
}

/** A secret key for `nix copy` (named `keyName`), made by Nix in the bench's work folder: its path. */
export function nixCopySecretKey(label: string, keyName: string): Promise<string | undefined> {
  return step(`make a signing key for nix copy${label}`, async () => {
    const dir = join(workDir(), `${keyName}-keys`);
    await mkdir(dir, { recursive: true });
    check(
      'nix-store --generate-binary-cache-key',
      await runCommand('nix-store', ['--generate-binary-cache-key', keyName, join(dir, 'secret'), join(dir, 'public')], {
        timeoutMs: 30_000,
      }),
    );
    return join(dir, 'secret');
  });
}
