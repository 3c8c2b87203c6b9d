/**
 * `npm run bench:maintain`: `cachix info` and `cachix gc` of a file:// cache of 10,000 paths
 * (BENCH_GC_PATHS), an s3rver bucket of 900 (BENCH_GC_S3_PATHS; s3rver cannot page a listing) and a moto
 * bucket of 10,000 (BENCH_GC_MOTO_PATHS; 0 leaves it out; moto pages at 1,000 keys as S3 does): wall time and peak RSS of each, as a Markdown table on stdout
 * (also written to bench/results-maintain.md). The cache is made up (test/helpers/synthetic-cache.ts):
 * valid narinfos and NARs, references among them, one pin; gc --older-than 0 keeps the pinned
 * closure and deletes the rest, so it measures listing, reading every narinfo, planning and
 * deleting nearly everything.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directorySink, s3Sink, writeSyntheticCache } from '../test/helpers/synthetic-cache.js';
import { startS3rver } from '../test/helpers/s3rver.js';
import { startMoto } from '../test/helpers/moto.js';
import { CACHIX_BIN, envNumber, ROOT } from './harness.js';
import { measure, runCommand } from './measure.js';

const PATHS = Math.round(envNumber('BENCH_GC_PATHS', 10_000));
/**
 * s3rver (3.7, here) answers every ListObjectsV2 whose result is truncated (more than MaxKeys
 * keys, 1000 at most) with "internal error", so it cannot list a folder of more than 1000 files;
 * real S3 pages through any number. Its bucket stays below that.
 */
const S3_PATHS = Math.round(envNumber('BENCH_GC_S3_PATHS', 900));
/** moto writes about 50 objects a second on a busy machine: 10,000 paths (20,000 objects) take minutes to make. */
const MOTO_PATHS = Math.round(envNumber('BENCH_GC_MOTO_PATHS', 10_000));

interface Row {
  cache: string;
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
    timeoutMs: 1_800_000,
  });
  if (result.code !== 0) throw new Error(`cachix ${args.join(' ')} exited ${result.code}: ${result.stderr.slice(-2000)}`);
  return { seconds: result.wallMs / 1000, peakRssMiB: result.peakRssBytes / 1024 / 1024, stderr: result.stderr, stdout: result.stdout };
}

async function benchCache(label: string, url: string, env: NodeJS.ProcessEnv, rows: Row[]): Promise<void> {
  const info = await timeCli(['info', url, '--json'], env);
  const summary = JSON.parse(info.stdout) as { paths: number; storedBytes: number };
  rows.push({
    cache: label,
    command: 'info --json',
    seconds: info.seconds,
    peakRssMiB: info.peakRssMiB,
    note: `${summary.paths} paths, ${summary.storedBytes} bytes`,
  });
  const dry = await timeCli(['gc', url, '--older-than', '0', '--dry-run'], env);
  rows.push({
    cache: label,
    command: 'gc --older-than 0 --dry-run',
    seconds: dry.seconds,
    peakRssMiB: dry.peakRssMiB,
    note: dry.stderr.trim().split('\n').at(-1) ?? '',
  });
  const gc = await timeCli(['gc', url, '--older-than', '0'], env);
  rows.push({
    cache: label,
    command: 'gc --older-than 0',
    seconds: gc.seconds,
    peakRssMiB: gc.peakRssMiB,
    note: gc.stderr.trim().split('\n').at(-1) ?? '',
  });
}

async function main(): Promise<void> {
  const build = await runCommand('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, timeoutMs: 300_000 });
  if (build.code !== 0) process.stderr.write(`tsc reported errors; using what it emitted\n`);
  const scratch = await mkdtemp(join(tmpdir(), 'cachix-bench-gc-'));
  const rows: Row[] = [];
  try {
    let started = performance.now();
    await writeSyntheticCache(directorySink(join(scratch, 'file')), PATHS, 1);
    process.stderr.write(`file cache of ${PATHS} paths written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    await benchCache(`file, ${PATHS} paths`, `file://${join(scratch, 'file')}`, {}, rows).catch((error: unknown) =>
      rows.push({ cache: 'file', command: 'failed', seconds: 0, peakRssMiB: 0, note: String(error).split('\n')[0]! }),
    );

    const s3 = await startS3rver();
    try {
      started = performance.now();
      const { sink, close } = s3Sink(s3, 'bench/');
      await writeSyntheticCache(sink, S3_PATHS, 1);
      close();
      process.stderr.write(`s3rver cache of ${S3_PATHS} paths written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      await benchCache(`s3rver, ${S3_PATHS} paths`, s3.s3Url.replace(`s3://${s3.bucket}?`, `s3://${s3.bucket}/bench?`), s3.env, rows).catch(
        (error: unknown) =>
          rows.push({ cache: 's3rver', command: 'failed', seconds: 0, peakRssMiB: 0, note: String(error).split('\n')[0]! }),
      );
    } finally {
      await s3.stop();
    }

    if (MOTO_PATHS > 0) {
      const moto = await startMoto();
      try {
        started = performance.now();
        const { sink, close } = s3Sink(moto, 'bench/');
        await writeSyntheticCache(sink, MOTO_PATHS, 1);
        close();
        process.stderr.write(`moto cache of ${MOTO_PATHS} paths written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
        const motoUrl = moto.s3Url.replace(`s3://${moto.bucket}?`, `s3://${moto.bucket}/bench?`);
        await benchCache(`moto, ${MOTO_PATHS} paths`, motoUrl, moto.env, rows).catch((error: unknown) =>
          rows.push({ cache: 'moto', command: 'failed', seconds: 0, peakRssMiB: 0, note: String(error).split('\n')[0]! }),
        );
      } finally {
        await moto.stop();
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const table = [
    `gc and info of made-up caches (${new Date().toISOString()})`,
    '',
    '| cache | command | wall s | peak RSS MiB | result |',
    '|---|---|---|---|---|',
    ...rows.map((row) => `| ${row.cache} | ${row.command} | ${row.seconds.toFixed(1)} | ${row.peakRssMiB.toFixed(0)} | ${row.note} |`),
  ].join('\n');
  process.stdout.write(table + '\n');
  await writeFile(join(ROOT, 'bench', 'results-maintain.md'), table + '\n');
}

await main();
