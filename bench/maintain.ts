/**
 * `npm run bench:maintain`: `cachix info`, `gc --dry-run`, `gc` and a no-op `push` on made-up
 * caches: a file:// cache of 10,000 paths (BENCH_GC_PATHS) and one of 100,000
 * (BENCH_GC_LARGE_PATHS; 0 leaves it out), an s3rver bucket of 900 (BENCH_GC_S3_PATHS; s3rver
 * cannot page a listing) and moto buckets of 10,000 (BENCH_GC_MOTO_PATHS) and of
 * BENCH_GC_MOTO_LARGE_PATHS (0, the default, leaves it out; moto pages at 1,000 keys as S3 does).
 * Wall time and peak RSS of each, and what a path costs in peak RSS between the two sizes of one
 * server, as Markdown on stdout (also written to bench/results-maintain.md). The cache is made up
 * (test/helpers/synthetic-cache.ts): valid narinfos and NARs, references among them, one pin; the
 * no-op push is of a real closure of 1,001 paths pushed just before (bench/input.ts), so a file
 * cache answers it from one directory read and S3 from listing pages; gc --older-than 0 keeps the
 * pinned closure and deletes the rest, so it measures listing, reading every narinfo, planning
 * and deleting nearly everything.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directorySink, s3Sink, writeSyntheticCache, type FileSink } from '../test/helpers/synthetic-cache.js';
import { startS3rver } from '../test/helpers/s3rver.js';
import { startMoto } from '../test/helpers/moto.js';
import { formatSigningKey, generateSigningKey } from '../src/nix/signing.js';
import { CACHIX_BIN, envNumber, ROOT } from './harness.js';
import { buildManySmall } from './input.js';
import { measure, runCommand } from './measure.js';

const PATHS = Math.round(envNumber('BENCH_GC_PATHS', 10_000));
const LARGE_PATHS = Math.round(envNumberOrZero('BENCH_GC_LARGE_PATHS', 100_000));
/**
 * s3rver (3.7, here) answers every ListObjectsV2 whose result is truncated (more than MaxKeys
 * keys, 1000 at most) with "internal error", so it cannot list a folder of more than 1000 files;
 * real S3 pages through any number. Its bucket stays below that (and gets no push: the closure
 * would take it past 1000).
 */
const S3_PATHS = Math.round(envNumberOrZero('BENCH_GC_S3_PATHS', 900));
/** moto writes about 50 objects a second on a busy machine: 10,000 paths (20,000 objects) take minutes to make. */
const MOTO_PATHS = Math.round(envNumberOrZero('BENCH_GC_MOTO_PATHS', 10_000));
const MOTO_LARGE_PATHS = Math.round(envNumberOrZero('BENCH_GC_MOTO_LARGE_PATHS', 0));
/** Small paths in the pushed closure (plus the one naming them): past a file cache's 256-path readdir threshold. */
const PUSHED_PATHS = 1000;
/** What a path may cost in peak RSS above the smaller run's (issue 27): 1,000,000 paths in 2 GB. */
const GOAL_BYTES_PER_PATH = 1536;

function envNumberOrZero(name: string, fallback: number): number {
  return process.env[name] === '0' ? 0 : envNumber(name, fallback);
}

interface Row {
  /** The server: rows of one server at two sizes give the per-path cost. */
  server: string;
  paths: number;
  command: string;
  seconds: number;
  peakRssMiB: number;
  note: string;
}

async function timeCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; peakRssMiB: number; stderr: string; stdout: string }> {
  const result = await measure(process.execPath, [CACHIX_BIN, ...args], {
    env: { ...process.env, CI: 'true', ...env },
    timeoutMs: 3_600_000,
  });
  if (result.code !== 0) throw new Error(`cachix ${args.join(' ')} exited ${result.code}: ${result.stderr.slice(-2000)}`);
  return { seconds: result.wallMs / 1000, peakRssMiB: result.peakRssBytes / 1024 / 1024, stderr: result.stderr, stdout: result.stdout };
}

const lastLine = (text: string): string => text.trim().split('\n').at(-1) ?? '';

/** A no-op push (after the first push of `pushed`, if given), info, gc --dry-run and gc of one made-up cache. */
async function benchCache(
  server: string,
  paths: number,
  url: string,
  env: NodeJS.ProcessEnv,
  pushed: string | undefined,
  rows: Row[],
): Promise<void> {
  const row = (command: string, measured: { seconds: number; peakRssMiB: number }, note: string): void =>
    void rows.push({ server, paths, command, seconds: measured.seconds, peakRssMiB: measured.peakRssMiB, note });
  try {
    if (pushed) {
      const signing = { ...env, CACHIX_SIGNING_KEY: formatSigningKey(generateSigningKey('bench-maintain-1')) };
      await timeCli(['push', url, pushed], signing);
      const noop = await timeCli(['push', url, pushed], signing);
      row(`push, no-op (${PUSHED_PATHS + 1} paths)`, noop, lastLine(noop.stderr));
    }
    const info = await timeCli(['info', url, '--json'], env);
    const summary = JSON.parse(info.stdout) as { paths: number; storedBytes: number };
    row('info --json', info, `${summary.paths} paths, ${summary.storedBytes} bytes`);
    const dry = await timeCli(['gc', url, '--older-than', '0', '--dry-run'], env);
    row('gc --older-than 0 --dry-run', dry, lastLine(dry.stderr));
    const gc = await timeCli(['gc', url, '--older-than', '0'], env);
    row('gc --older-than 0', gc, lastLine(gc.stderr));
  } catch (error) {
    rows.push({ server, paths, command: 'failed', seconds: 0, peakRssMiB: 0, note: String(error).split('\n')[0]! });
  }
}

async function writeCache(what: string, sink: FileSink, paths: number): Promise<void> {
  const started = performance.now();
  await writeSyntheticCache(sink, paths, 1);
  process.stderr.write(`${what} of ${paths} paths written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

/** Peak RSS per path between the smallest and the largest run of each server and command. */
function perPathCosts(rows: readonly Row[]): string[] {
  const lines: string[] = [];
  for (const server of new Set(rows.map((row) => row.server))) {
    const sizes = [...new Set(rows.filter((row) => row.server === server).map((row) => row.paths))].sort((a, b) => a - b);
    if (sizes.length < 2) continue;
    const [small, large] = [sizes[0]!, sizes.at(-1)!];
    for (const command of ['info --json', 'gc --older-than 0 --dry-run', 'gc --older-than 0']) {
      const at = (paths: number): Row | undefined =>
        rows.find((row) => row.server === server && row.paths === paths && row.command === command);
      const [before, after] = [at(small), at(large)];
      if (!before || !after) continue;
      const perPath = ((after.peakRssMiB - before.peakRssMiB) * 1024 * 1024) / (large - small);
      lines.push(
        `| ${server} | ${command} | ${small} → ${large} | ${before.peakRssMiB.toFixed(0)} → ${after.peakRssMiB.toFixed(0)} | ${(perPath / 1024).toFixed(2)} | ${perPath <= GOAL_BYTES_PER_PATH ? 'met' : 'MISSED'} |`,
      );
    }
  }
  return lines;
}

async function main(): Promise<void> {
  const build = await runCommand('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, timeoutMs: 300_000 });
  if (build.code !== 0) process.stderr.write(`tsc reported errors; using what it emitted\n`);
  const pushed = (await buildManySmall(PUSHED_PATHS, 600_000)).top;
  const scratch = await mkdtemp(join(tmpdir(), 'cachix-bench-gc-'));
  const rows: Row[] = [];
  try {
    for (const paths of [PATHS, LARGE_PATHS].filter((count) => count > 0)) {
      const dir = join(scratch, `file-${paths}`);
      await writeCache('file cache', directorySink(dir), paths);
      await benchCache('file', paths, `file://${dir}`, {}, pushed, rows);
      await rm(dir, { recursive: true, force: true });
    }

    if (S3_PATHS > 0) {
      const s3 = await startS3rver();
      try {
        const { sink, close } = s3Sink(s3, 'bench/');
        await writeCache('s3rver bucket', sink, S3_PATHS);
        close();
        await benchCache('s3rver', S3_PATHS, s3.s3Url.replace(`s3://${s3.bucket}?`, `s3://${s3.bucket}/bench?`), s3.env, undefined, rows);
      } finally {
        await s3.stop();
      }
    }

    for (const paths of [MOTO_PATHS, MOTO_LARGE_PATHS].filter((count) => count > 0)) {
      const moto = await startMoto();
      try {
        const { sink, close } = s3Sink(moto, 'bench/');
        await writeCache('moto bucket', sink, paths);
        close();
        await benchCache('moto', paths, moto.s3Url.replace(`s3://${moto.bucket}?`, `s3://${moto.bucket}/bench?`), moto.env, pushed, rows);
      } finally {
        await moto.stop();
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const costs = perPathCosts(rows);
  const table = [
    `gc, info and a no-op push on made-up caches (${new Date().toISOString()})`,
    '',
    '| cache | command | wall s | peak RSS MiB | result |',
    '|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.server}, ${row.paths} paths | ${row.command} | ${row.seconds.toFixed(1)} | ${row.peakRssMiB.toFixed(0)} | ${row.note} |`,
    ),
    ...(costs.length > 0
      ? [
          '',
          `What a path costs in peak RSS between the two sizes (goal: at most ${(GOAL_BYTES_PER_PATH / 1024).toFixed(1)} KiB a path):`,
          '',
          '| server | command | paths | peak RSS MiB | KiB a path | goal |',
          '|---|---|---|---|---|---|',
          ...costs,
        ]
      : []),
  ].join('\n');
  process.stdout.write(table + '\n');
  await writeFile(join(ROOT, 'bench', 'results-maintain.md'), table + '\n');
}

await main();
