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

export async function queryPathInfo(
  paths: string[],
  options: { recursive?: boolean; storeDir?: string; signal?: AbortSignal } = {},
): Promise<PathInfo[]> {
  const byPath = new Map<string, PathInfo>();
  // Nix 2.8 reads `nix path-info X.drv` as "the outputs of X" (newer Nix, as X itself); with
  // --derivation, a .drv is itself everywhere, but any other path turns into its deriver. So
  // derivations are asked with --derivation and everything else without.
  const derivations = paths.filter((path) => path.endsWith('.drv'));
  const others = paths.filter((path) => !path.endsWith('.drv'));
  const batches: Array<[string[], string[]]> = [];
  for (const [group, extra] of [
    [others, []],
    [derivations, ['--derivation']],
  ] as const) {
    for (let start = 0; start < group.length; start += ARGS_PER_CALL) batches.push([group.slice(start, start + ARGS_PER_CALL), [...extra]]);
  }
  for (const [batch, extra] of batches) {
    const args = [...NIX, 'path-info', '--json', ...extra, ...(options.recursive ? ['--recursive'] : []), ...batch];
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync('nix', args, { maxBuffer: 1 << 30, encoding: 'utf8', signal: options.signal }));
    } catch (error) {
      throw nixFailure(error, batch);
    }
    for (const info of parsePathInfoJson(stdout, options.storeDir)) byPath.set(info.path, info);
  }
  return [...byPath.values()];
}

/** Of these store paths, the ones Nix considers valid (for the store watcher). */
export async function queryValidPaths(paths: string[]): Promise<string[]> {
  const invalid = new Set<string>();
  for (let start = 0; start < paths.length; start += ARGS_PER_CALL) {
    const batch = paths.slice(start, start + ARGS_PER_CALL);
    try {
      const { stdout } = await execFileAsync('nix-store', ['--check-validity', '--print-invalid', ...batch], {
        maxBuffer: 1 << 28,
        encoding: 'utf8',
      });
      for (const line of stdout.split('\n')) if (line) invalid.add(line);
    } catch (error) {
      throw nixFailure(error, batch);
    }
  }
  return paths.filter((path) => !invalid.has(path));
}
