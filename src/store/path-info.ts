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
 * Runs `command ...args ...batch` over `paths` ARGS_PER_CALL at a time, handing each batch's
 * output to `take`. `onFailure` may replace the error of a failed batch (with a sharper one).
 */
export async function runNixBatched(
  command: 'nix' | 'nix-store',
  args: string[],
  paths: string[],
  signal: AbortSignal | undefined,
  take: (stdout: string) => void,
  onFailure: (batch: string[]) => Promise<void> = async () => undefined,
): Promise<void> {
  for (let start = 0; start < paths.length; start += ARGS_PER_CALL) {
    const batch = paths.slice(start, start + ARGS_PER_CALL);
    let stdout: string;
    try {
      // A query nobody waits for any more is killed outright: it only reads, and a process that
      // ended its work would otherwise keep this one from exiting until Nix noticed a SIGTERM.
      ({ stdout } = await execFileAsync(command, [...args, ...batch], {
        maxBuffer: 1 << 30,
        encoding: 'utf8',
        signal,
        killSignal: 'SIGKILL',
      }));
    } catch (error) {
      if (signal?.aborted) throw error;
      await onFailure(batch);
      throw nixFailure(error, batch);
    }
    take(stdout);
  }
}
