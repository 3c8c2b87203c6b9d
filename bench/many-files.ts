import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildManyFiles, closureNarSize } from './input.js';
import { measure, runCommand, treeBytes, type Measured } from './measure.js';
import { megabytes, seconds } from './report.js';
import {
  GOALS,
  LEVEL,
  NIX_FEATURES,
  SCALE,
  SMALL_TIMEOUT_MS,
  cacheDir,
  cachixOk,
  check,
  envNumber,
  log,
  ratioTarget,
  step,
  sync,
  throughput,
  workDir,
} from './harness.js';

/** Target 4: one store path holding tens of thousands of small files. */
export const MANY_FILES = Math.round(envNumber('BENCH_MANY_FILES', SCALE >= 1 ? 50_000 : Math.max(2000, Math.round(50_000 * SCALE))));

interface Run {
  result: Measured;
  outputBytes: number;
}

/** The second shape: tiny files (a few bytes each) side by side in ONE directory, added with nix-store --add. */
export const TINY_FILES = Math.round(envNumber('BENCH_TINY_FILES', SCALE >= 1 ? 50_000 : Math.max(2000, Math.round(50_000 * SCALE))));

/** One directory of `files` tiny files (the same on every run), added to the store: its path. */
async function addTinyFilesDirectory(files: number): Promise<string> {
  const dir = join(workDir(), `bench-tiny-files-${files}`);
  await mkdir(dir, { recursive: true });
  const script =
    'for my $i (0..$ARGV[1]-1) { open(my $f, ">", sprintf("%s/entry-%06d.txt", $ARGV[0], $i)) or die; print $f "tiny $i\\n"; close $f }';
  check('perl', await runCommand('perl', ['-e', script, dir, String(files)], { timeoutMs: SMALL_TIMEOUT_MS }));
  const added = check('nix-store --add', await runCommand('nix-store', ['--add', dir], { timeoutMs: SMALL_TIMEOUT_MS }));
  await rm(dir, { recursive: true, force: true });
  return added.stdout.trim();
}

export async function manyFilesPath(): Promise<void> {
  const input = await step(`build one path of ${MANY_FILES} small files (once per machine)`, () => buildManyFiles(MANY_FILES, 3600_000));
  await manyFilesShape(`${MANY_FILES} files in one path`, input?.path, input ? ` built in ${seconds(input.buildMs)}` : '');
  const tiny = await step(`add one directory of ${TINY_FILES} tiny files (nix-store --add)`, () => addTinyFilesDirectory(TINY_FILES));
  await manyFilesShape(`${TINY_FILES} tiny files in one directory`, tiny, '');
}

/** Floor, nix copy and ours on one path of many files: rows and verdicts named by `label`. */
async function manyFilesShape(label: string, path: string | undefined, built: string): Promise<void> {
  let floor: Run | undefined;
  let nixCopy: Run | undefined;
  let ours: Run | undefined;
  let narBytes = 0;
  const cacheName = `bench-${label.replace(/\W+/g, '-')}`.replace(/-+$/, '');
  if (path) {
    narBytes = await closureNarSize(path);
    log(`   ${path}: ${megabytes(narBytes)} of NAR,${built}`);
    await step('warm the page cache (nix-store --dump to /dev/null)', async () =>
      check(
        'nix-store --dump',
        await measure('bash', ['-c', 'nix-store --dump "$1" > /dev/null', 'bash', path], { timeoutMs: SMALL_TIMEOUT_MS }),
      ),
    );
    floor = await step(`floor: nix-store --dump | zstd -T2 -${LEVEL}`, async () => {
      const output = join(workDir(), `${cacheName}-floor.nar.zst`);
      await sync();
      const script = `set -o pipefail; nix-store --dump "$1" | zstd -T2 -q -${LEVEL} -c > "$2"`;
      const result = check('floor', await measure('bash', ['-c', script, 'bash', path, output], { timeoutMs: SMALL_TIMEOUT_MS }));
      const outputBytes = (await stat(output)).size;
      await rm(output, { force: true });
      return { result, outputBytes };
    });
    nixCopy = await step('nix copy of it to a file cache', async () => {
      const dir = join(workDir(), `nix-copy-${cacheName}`);
      await sync();
      const url = `file://${dir}?compression=zstd&compression-level=${LEVEL}`;
      const result = check('nix copy', await measure('nix', [...NIX_FEATURES, 'copy', '--to', url, path], { timeoutMs: SMALL_TIMEOUT_MS }));
      const outputBytes = await treeBytes(join(dir, 'nar'));
      await rm(dir, { recursive: true, force: true });
      return { result, outputBytes };
    });
    ours = await step('cachix push of it to a file cache', async () => {
      await cachixOk(['create', cacheName], 60_000);
      await sync();
      const result = await cachixOk(['push', cacheName, path, '-m', 'zstd', '-l', String(LEVEL)], SMALL_TIMEOUT_MS);
      const outputBytes = await treeBytes(join(cacheDir(cacheName), 'nar'));
      await rm(cacheDir(cacheName), { recursive: true, force: true });
      return { result, outputBytes };
    });
    log(
      `   output: ours ${megabytes(ours?.outputBytes)}, nix copy ${megabytes(nixCopy?.outputBytes)}, zstd CLI ${megabytes(floor?.outputBytes)}`,
    );
  }
  const row = (name: string, run: Run | undefined, note: string) =>
    throughput.push({
      name,
      wallMs: run?.result.wallMs,
      narBytes,
      outputBytes: run?.outputBytes,
      peakRssBytes: run?.result.peakRssBytes,
      note,
    });
  row(`${label}: floor (dump | zstd -T2 -${LEVEL})`, floor, 'no hashing, no signing');
  row(`${label}: nix copy`, nixCopy, 'the peer');
  row(`${label}: cachix push`, ours, 'file cache');
  const times = `ours ${seconds(ours?.result.wallMs)}, nix copy ${seconds(nixCopy?.result.wallMs)}, floor ${seconds(floor?.result.wallMs)}`;
  ratioTarget(
    `${label}: ours / nix copy (${times})`,
    ours && nixCopy ? ours.result.wallMs / nixCopy.result.wallMs : undefined,
    `≤ ${GOALS.manyFilesVsNixCopy}×`,
    (v) => v <= GOALS.manyFilesVsNixCopy,
  );
  ratioTarget(
    `${label}: ours / floor`,
    ours && floor ? ours.result.wallMs / floor.result.wallMs : undefined,
    `≤ ${GOALS.manyFilesVsFloor}×`,
    (v) => v <= GOALS.manyFilesVsFloor,
  );
  ratioTarget(
    `${label}: output size, ours / nix copy (${megabytes(ours?.outputBytes)} / ${megabytes(nixCopy?.outputBytes)})`,
    ours && nixCopy ? ours.outputBytes / nixCopy.outputBytes : undefined,
    `≤ ${GOALS.sizeVsNixCopy}×`,
    (v) => v <= GOALS.sizeVsNixCopy,
    (v) => `${v.toFixed(3)}×`,
  );
}
