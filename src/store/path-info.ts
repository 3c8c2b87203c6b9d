import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UserError } from '../errors.js';
import { parsePathInfoJson, type PathInfo } from '../nix/path-info-json.js';

// Asks the local Nix about store paths: their recorded info, and which are valid.

export type { PathInfo };

const execFileAsync = promisify(execFile);

const NIX = ['--extra-experimental-features', 'nix-command'];
/** Stay far below the kernel's argument limit when a closure has tens of thousands of paths. */
const ARGS_PER_CALL = 2000;

function nixFailure(error: unknown, paths: string[]): UserError {
  const stderr = String((error as { stderr?: string }).stderr ?? (error as Error).message).trim();
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
    return new UserError('cannot run nix: it is not on PATH', 'install Nix (https://nixos.org/download) or fix PATH');
  }
  const lastLine = stderr.split('\n').filter(Boolean).pop() ?? 'nix failed';
  const first = paths.length === 1 ? paths[0] : `${paths.length} paths`;
  return new UserError(
    `nix could not read ${first}: ${lastLine.replace(/^error: /, '')}`,
    'check the paths are valid store paths (nix-store --check-validity PATH)',
  );
}

type PathInfoOptions = { recursive?: boolean; storeDir?: string; signal?: AbortSignal };

/**
 * Path info for store paths themselves, as `nix-store -qR` and cachix see them. Nix 2.8's
 * `nix path-info X.drv` means the derivation's outputs (it would look them up in substituters
 * when unbuilt), so .drv files are asked with --derivation, and only they: on any other path
 * --derivation means its deriver.
 */
export async function queryPathInfo(paths: string[], options: PathInfoOptions = {}): Promise<PathInfo[]> {
  const derivations = paths.filter((path) => path.endsWith('.drv'));
  const others = paths.filter((path) => !path.endsWith('.drv'));
  const byPath = new Map<string, PathInfo>();
  for (const info of await queryPathInfoAs(others, [], options)) byPath.set(info.path, info);
  for (const info of await queryPathInfoAs(derivations, ['--derivation'], options)) byPath.set(info.path, info);
  return [...byPath.values()];
}

async function queryPathInfoAs(paths: string[], extraArgs: string[], options: PathInfoOptions): Promise<PathInfo[]> {
  const args = [...NIX, 'path-info', '--json', ...extraArgs, ...(options.recursive ? ['--recursive'] : [])];
  const byPath = new Map<string, PathInfo>();
  await runNixBatched('nix', args, paths, options.signal, (stdout) => {
    for (const info of parsePathInfoJson(stdout, options.storeDir)) byPath.set(info.path, info);
  });
  return [...byPath.values()];
}

/** Of these store paths, the ones Nix considers valid (for the store watcher). */
export async function queryValidPaths(paths: string[]): Promise<string[]> {
  const invalid = new Set<string>();
  await runNixBatched('nix-store', ['--check-validity', '--print-invalid'], paths, undefined, (stdout) => {
    for (const line of stdout.split('\n')) if (line) invalid.add(line);
  });
  return paths.filter((path) => !invalid.has(path));
}

/**
 * Nix answers a query on one thread, and a push waits for it with its own threads idle: from this
 * many paths on, the query is split in two halves asked side by side.
 */
const SPLIT_FROM_PATHS = 1000;
const CALLS_AT_ONCE = 2;

/** `paths` in batches of at most ARGS_PER_CALL, as even as can be, and at least two from SPLIT_FROM_PATHS. */
function batchesOf(paths: string[]): string[][] {
  const count = Math.max(Math.ceil(paths.length / ARGS_PER_CALL), paths.length >= SPLIT_FROM_PATHS ? CALLS_AT_ONCE : 1);
  const size = Math.ceil(paths.length / count);
  const batches: string[][] = [];
  for (let start = 0; start < paths.length; start += size) batches.push(paths.slice(start, start + size));
  return batches;
}

/**
 * Runs `command ...args ...batch` over `paths`, CALLS_AT_ONCE batches at a time, handing each
 * batch's output to `take` in the order of the batches. `onFailure` may replace the error of a
 * failed batch (with a sharper one); the first failure stops the other calls.
 */
export async function runNixBatched(
  command: 'nix' | 'nix-store',
  args: string[],
  paths: string[],
  signal: AbortSignal | undefined,
  take: (stdout: string) => void,
  onFailure: (batch: string[]) => Promise<void> = async () => undefined,
): Promise<void> {
  const batches = batchesOf(paths);
  const stopOthers = new AbortController();
  const callSignal = signal ? AbortSignal.any([signal, stopOthers.signal]) : stopOthers.signal;
  // The error of the batch that failed first, in the user's terms; the others were stopped for it.
  let firstFailure: unknown;
  const call = async (batch: string[]): Promise<string> => {
    try {
      // A query nobody waits for any more is killed outright: it only reads, and a process that
      // ended its work would otherwise keep this one from exiting until Nix noticed a SIGTERM.
      const { stdout } = await execFileAsync(command, [...args, ...batch], {
        maxBuffer: 1 << 30,
        encoding: 'utf8',
        signal: callSignal,
        killSignal: 'SIGKILL',
      });
      return stdout;
    } catch (error) {
      if (signal?.aborted || stopOthers.signal.aborted) throw error;
      stopOthers.abort();
      try {
        await onFailure(batch);
        firstFailure = nixFailure(error, batch);
      } catch (sharper) {
        firstFailure = sharper;
      }
      throw firstFailure;
    }
  };
  const outputs: Array<Promise<string>> = [];
  const startNext = (): void => {
    if (outputs.length >= batches.length || stopOthers.signal.aborted) return;
    const output = call(batches[outputs.length]!);
    output.catch(() => undefined);
    outputs.push(output);
  };
  for (let started = 0; started < CALLS_AT_ONCE; started++) startNext();
  let failure: unknown;
  for (let index = 0; index < outputs.length; index++) {
    try {
      const stdout = await outputs[index]!;
      if (failure === undefined) take(stdout);
      startNext();
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) throw firstFailure ?? failure;
}
