import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildManySmall, type ManySmallInput } from './input.js';
import { measure, runCommand, treeBytes, type Measured } from './measure.js';
import { megabytes, seconds } from './report.js';
import {
  GOALS,
  LEVEL,
  NIX_FEATURES,
  ROOT,
  SMALL_PATHS,
  SMALL_TIMEOUT_MS,
  cacheDir,
  cachixEnv,
  cachixOk,
  CACHIX_BIN,
  check,
  envNumber,
  log,
  ratioTarget,
  SCALE,
  step,
  sync,
  timings,
  workDir,
  nixCopySecretKey,
} from './harness.js';

interface Nginx {
  url: string;
  root: string;
  stop(): Promise<void>;
}

/**
 * The test suite's WebDAV nginx, listing its folders with PROPFIND (Debian's
 * libnginx-mod-http-dav-ext), as an nginx serving a cache to `nix copy --to http://` and `cachix`
 * alike would: lookups can then be answered by one listing instead of one HEAD per path.
 */
async function startNginx(): Promise<Nginx> {
  const helper = join(ROOT, 'test', 'helpers', 'nginx.ts');
  if (!existsSync(helper)) throw new Error(`${helper} does not exist yet`);
  const module = (await import(pathToFileURL(helper).href)) as { startNginx: (options: { listing: 'propfind' }) => Promise<Nginx> };
  return module.startNginx({ listing: 'propfind' });
}

/** What one side (ours or nix copy) measured on one kind of cache. */
interface Side {
  first?: Measured | undefined;
  noop?: Measured | undefined;
  /** nix copy only: a no-op with its narinfo disk cache emptied first. */
  noopCold?: Measured | undefined;
}

const ratio = (ours: Measured | undefined, theirs: Measured | undefined): number | undefined =>
  ours && theirs ? ours.wallMs / theirs.wallMs : undefined;

const versus = (ours: Measured | undefined, theirs: Measured | undefined): string =>
  `ours ${seconds(ours?.wallMs)}, nix copy ${seconds(theirs?.wallMs)}`;

function timing(name: string, result: Measured | undefined, note?: string): void {
  timings.push({ name, wallMs: result?.wallMs, peakRssBytes: result?.peakRssBytes, note });
}

async function ours(cache: string, top: string, label: string): Promise<Side> {
  const side: Side = {};
  side.first = await step(`${label}: cachix push of ${SMALL_PATHS + 1} small paths`, () =>
    cachixOk(['push', cache, top, '-m', 'zstd', '-l', String(LEVEL)], SMALL_TIMEOUT_MS),
  );
  timing(`${label}: cachix push, first push of ${SMALL_PATHS + 1} small paths`, side.first);
  if (side.first) side.noop = await step(`${label}: cachix push, no-op re-push`, () => cachixOk(['push', cache, top], SMALL_TIMEOUT_MS));
  timing(`${label}: cachix push, no-op re-push (all present)`, side.noop);
  return side;
}

/**
 * nix copy, signed as ours is, with its narinfo disk cache in the run's own XDG_CACHE_HOME: the
 * first copy fills it, so the no-op after it is Nix's best case, and a second no-op with the disk
 * cache emptied is what Nix does on a fresh CI runner.
 */
async function nixCopy(url: string, top: string, label: string, secretKey: string, withCold: boolean): Promise<Side> {
  const cacheHome = join(workDir(), `nix-cache-home-${label.replace(/\W+/g, '-')}`);
  const env = { ...process.env, XDG_CACHE_HOME: cacheHome };
  const target = `${url}${url.includes('?') ? '&' : '?'}compression=zstd&compression-level=${LEVEL}&secret-key=${secretKey}`;
  const copy = async () =>
    check('nix copy', await measure('nix', [...NIX_FEATURES, 'copy', '--to', target, top], { env, timeoutMs: SMALL_TIMEOUT_MS }));
  const side: Side = {};
  side.first = await step(`${label}: nix copy of ${SMALL_PATHS + 1} small paths`, copy);
  timing(`${label}: nix copy, first copy`, side.first, 'the peer');
  if (side.first) side.noop = await step(`${label}: nix copy, no-op (its narinfo cache warm)`, copy);
  timing(`${label}: nix copy, no-op re-copy (narinfo cache warm)`, side.noop, 'the peer');
  if (side.first && withCold) {
    side.noopCold = await step(`${label}: nix copy, no-op (its narinfo cache emptied)`, async () => {
      await rm(cacheHome, { recursive: true, force: true });
      return copy();
    });
    timing(`${label}: nix copy, no-op re-copy (narinfo cache emptied)`, side.noopCold, 'for reference');
  }
  await rm(cacheHome, { recursive: true, force: true });
  return side;
}

/**
 * What creating the files of the pushed cache costs by itself: `cp -a` of it makes the same
 * 20,000 files with the same bytes, computing nothing and renaming nothing. Any pusher into a
 * file cache does at least this (and an atomic one, as Nix and we are, a rename per file more).
 */
async function fileCreationFloor(cacheRoot: string): Promise<Measured | undefined> {
  return step('floor: cp -a of the pushed file cache (creating the same files, nothing else)', async () => {
    const copy = join(workDir(), 'file-creation-floor');
    await sync();
    const result = check('cp -a', await measure('cp', ['-a', cacheRoot, copy], { timeoutMs: SMALL_TIMEOUT_MS }));
    await rm(copy, { recursive: true, force: true });
    return result;
  });
}

function fileTargets(us: Side, them: Side, floor: Measured | undefined): void {
  ratioTarget(
    `small paths, first push to a file cache: ours / nix copy (${versus(us.first, them.first)}; creating the same files alone, cp -a: ${seconds(floor?.wallMs)})`,
    ratio(us.first, them.first),
    `≤ ${GOALS.smallFirstVsNixCopy}×`,
    (v) => v <= GOALS.smallFirstVsNixCopy,
  );
  ratioTarget(
    `small paths, no-op re-push to a file cache: ours / nix copy (${versus(us.noop, them.noop)})`,
    ratio(us.noop, them.noop),
    `≤ ${GOALS.noopVsNixCopy}×`,
    (v) => v <= GOALS.noopVsNixCopy,
  );
  ratioTarget(
    `small paths, first push: peak RSS of cachix push`,
    us.first?.peakRssBytes,
    `< ${megabytes(GOALS.smallPeakRssBytes)}`,
    (v) => v < GOALS.smallPeakRssBytes,
    (v) => megabytes(v),
  );
}

function httpTargets(us: Side, them: Side): void {
  ratioTarget(
    `small paths, first push to nginx: ours / nix copy (${versus(us.first, them.first)})`,
    ratio(us.first, them.first),
    `< ${GOALS.smallHttpFirstVsNixCopy}×`,
    (v) => v < GOALS.smallHttpFirstVsNixCopy,
  );
  ratioTarget(
    `small paths, no-op re-push to nginx: ours / nix copy with its narinfo cache warm (${versus(us.noop, them.noop)}; ` +
      `emptied: ${seconds(them.noopCold?.wallMs)})`,
    ratio(us.noop, them.noop),
    `≤ ${GOALS.noopVsNixCopy}×`,
    (v) => v <= GOALS.noopVsNixCopy,
  );
}

/** BENCH_SMALL_SHAPES=closure,stdin (both when unset): the one top path's closure, the one-file paths from stdin. */
export async function manySmallPaths(): Promise<void> {
  const shapes = (process.env.BENCH_SMALL_SHAPES ?? 'closure,stdin').split(',');
  if (shapes.includes('closure')) await closureOfSmallPaths();
  if (shapes.includes('stdin')) await oneFilePathsFromStdin();
}

async function closureOfSmallPaths(): Promise<void> {
  const many: ManySmallInput | undefined = await step(`build ${SMALL_PATHS} small paths and one referring to all (once per machine)`, () =>
    buildManySmall(SMALL_PATHS, 3600_000),
  );
  if (many) log(`   ${many.top}: closure of ${many.closure.length} paths, built in ${seconds(many.buildMs)}`);
  const key = many ? await nixCopySecretKey(' of the small paths', 'bench-small-1') : undefined;

  let us: Side = {};
  let them: Side = {};
  let floor: Measured | undefined;
  if (many && key && (await step('create the file cache bench-many', () => cachixOk(['create', 'bench-many'], 60_000)))) {
    us = await ours('bench-many', many.top, 'file cache');
    if (us.first) floor = await fileCreationFloor(cacheDir('bench-many'));
    timing('file cache: floor, cp -a of the pushed cache', floor, 'creating the same files, nothing computed');
    const dir = join(workDir(), 'nix-copy-many');
    them = await nixCopy(`file://${dir}`, many.top, 'file cache', key, false);
    const oursBytes = await treeBytes(join(cacheDir('bench-many'), 'nar')).catch(() => undefined);
    const theirBytes = await treeBytes(join(dir, 'nar')).catch(() => undefined);
    ratioTarget(
      `small paths: output size, ours / nix copy (${megabytes(oursBytes)} / ${megabytes(theirBytes)})`,
      oursBytes !== undefined && theirBytes ? oursBytes / theirBytes : undefined,
      `≤ ${GOALS.sizeVsNixCopy}×`,
      (v) => v <= GOALS.sizeVsNixCopy,
      (v) => `${v.toFixed(3)}×`,
    );
    await rm(dir, { recursive: true, force: true });
  }
  fileTargets(us, them, floor);

  let nginx: Nginx | undefined;
  us = {};
  them = {};
  try {
    nginx = many && key ? await step('start nginx (WebDAV, PROPFIND)', startNginx) : undefined;
    if (
      many &&
      key &&
      nginx &&
      (await step('create the HTTP cache bench-http', () => cachixOk(['create', 'bench-http', '--url', `${nginx!.url}/ours`], 60_000)))
    ) {
      us = await ours('bench-http', many.top, 'nginx cache');
      them = await nixCopy(`${nginx.url}/nix-copy`, many.top, 'nginx cache', key, true);
    }
  } finally {
    if (nginx) await step('stop nginx', () => nginx!.stop());
  }
  httpTargets(us, them);
}

/** The second shape: independent one-file paths (nix-store --add), piped in as `nix-store -qR … | cachix push` does. */
export const STDIN_PATHS = Math.round(envNumber('BENCH_STDIN_PATHS', SCALE >= 1 ? 3000 : Math.max(100, Math.round(3000 * SCALE))));

/** `count` one-file store paths added by `nix-store --add` (the same paths on every run), listed as `nix-store -qR` lists them. */
async function addOneFilePaths(count: number): Promise<string[]> {
  const dir = join(workDir(), 'stdin-files');
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  for (let index = 0; index < count; index++) {
    const name = `bench-stdin-${index}.txt`;
    await writeFile(join(dir, name), `cachix-bench-v1 one-file path ${index}\n`);
    names.push(name);
  }
  const added = check('nix-store --add', await runCommand('nix-store', ['--add', ...names], { cwd: dir, timeoutMs: SMALL_TIMEOUT_MS }));
  const paths = added.stdout.trim().split('\n').filter(Boolean);
  if (paths.length !== count) throw new Error(`nix-store --add printed ${paths.length} paths, not ${count}`);
  const listed = check('nix-store -qR', await runCommand('nix-store', ['-qR', ...paths], { timeoutMs: SMALL_TIMEOUT_MS }));
  return listed.stdout.trim().split('\n').filter(Boolean);
}

/**
 * Independent one-file paths pushed from stdin into a file cache, against `nix copy` of the same
 * paths and `cp -a` of the pushed cache: no closure to walk, every path named, so what each path
 * costs on its own (Nix's queries about it, its files in the cache) is all there is.
 */
export async function oneFilePathsFromStdin(): Promise<void> {
  const paths = await step(`add ${STDIN_PATHS} one-file paths (nix-store --add)`, () => addOneFilePaths(STDIN_PATHS));
  const key = paths ? await nixCopySecretKey(' of the one-file paths', 'bench-stdin-1') : undefined;
  let us: Measured | undefined;
  let them: Measured | undefined;
  let floor: Measured | undefined;
  let oursBytes: number | undefined;
  let theirBytes: number | undefined;
  const label = `${STDIN_PATHS} one-file paths from stdin`;
  if (paths && key && (await step('create the file cache bench-stdin', () => cachixOk(['create', 'bench-stdin'], 60_000)))) {
    await sync();
    us = await step(`${label}: nix-store -qR … | cachix push to a file cache`, async () =>
      check(
        'cachix push',
        await measure(process.execPath, [CACHIX_BIN, 'push', 'bench-stdin', '-m', 'zstd', '-l', String(LEVEL)], {
          env: cachixEnv(),
          timeoutMs: SMALL_TIMEOUT_MS,
          input: paths.join('\n') + '\n',
        }),
      ),
    );
    timing(`${label}: cachix push (paths on stdin), first push`, us);
    if (us) floor = await fileCreationFloor(cacheDir('bench-stdin'));
    timing(`${label}: floor, cp -a of the pushed cache`, floor, 'creating the same files, nothing computed');
    oursBytes = await treeBytes(join(cacheDir('bench-stdin'), 'nar')).catch(() => undefined);
    const dir = join(workDir(), 'nix-copy-stdin');
    await sync();
    them = await step(`${label}: nix copy of the same paths`, async () =>
      check(
        'nix copy',
        await measure(
          'nix',
          [...NIX_FEATURES, 'copy', '--to', `file://${dir}?compression=zstd&compression-level=${LEVEL}&secret-key=${key}`, ...paths],
          { env: { ...process.env, XDG_CACHE_HOME: join(workDir(), 'nix-cache-home-stdin') }, timeoutMs: SMALL_TIMEOUT_MS },
        ),
      ),
    );
    timing(`${label}: nix copy, first copy`, them, 'the peer');
    theirBytes = await treeBytes(join(dir, 'nar')).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await rm(cacheDir('bench-stdin'), { recursive: true, force: true });
  }
  ratioTarget(
    `${label}, first push to a file cache: ours / nix copy (${versus(us, them)}; creating the same files alone, cp -a: ${seconds(floor?.wallMs)})`,
    ratio(us, them),
    `≤ ${GOALS.smallFirstVsNixCopy}×`,
    (v) => v <= GOALS.smallFirstVsNixCopy,
  );
  ratioTarget(
    `${label}: output size, ours / nix copy (${megabytes(oursBytes)} / ${megabytes(theirBytes)})`,
    oursBytes !== undefined && theirBytes ? oursBytes / theirBytes : undefined,
    `≤ ${GOALS.sizeVsNixCopy}×`,
    (v) => v <= GOALS.sizeVsNixCopy,
    (v) => `${v.toFixed(3)}×`,
  );
}
