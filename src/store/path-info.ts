import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { promisify } from 'node:util';
import { UserError } from '../errors.js';
import { parseHash, type Hash } from '../nix/hash.js';
import { DEFAULT_STORE_DIR, isStorePath } from '../nix/store-path.js';

const execFileAsync = promisify(execFile);

/** What Nix's database records for one valid store path. */
export interface PathInfo {
  path: string;
  narHash: Hash;
  narSize: number;
  /** Full store paths, possibly including the path itself. */
  references: string[];
  deriver?: string | undefined;
  sigs: string[];
  ca?: string | undefined;
}

interface RawPathInfo {
  path?: string;
  narHash?: string;
  narSize?: number;
  references?: string[];
  deriver?: string | null;
  signatures?: string[];
  ca?: string | null;
  valid?: boolean;
}

function fullPath(reference: string, storeDir: string): string {
  return reference.startsWith('/') ? reference : `${storeDir}/${reference}`;
}

function toPathInfo(path: string, raw: RawPathInfo, storeDir: string): PathInfo {
  if (raw.valid === false || raw.narHash === undefined || raw.narSize === undefined) {
    throw new UserError(`${path} is not a valid store path`, 'build or fetch it first (nix-build, nix-store --realise)');
  }
  return {
    path,
    narHash: parseHash(raw.narHash),
    narSize: raw.narSize,
    references: (raw.references ?? []).map((reference) => fullPath(reference, storeDir)),
    deriver: raw.deriver ? fullPath(raw.deriver, storeDir) : undefined,
    sigs: raw.signatures ?? [],
    ca: raw.ca ?? undefined,
  };
}

/**
 * Reads `nix path-info --json` in both shapes: Nix 2.8 prints an array of objects with `path`
 * and `sha256:<base32>` hashes; newer Nix prints an object keyed by path with SRI hashes, and
 * the newest prints references as base names.
 */
export function parsePathInfoJson(json: string, storeDir = DEFAULT_STORE_DIR): PathInfo[] {
  const parsed: unknown = JSON.parse(json);
  if (Array.isArray(parsed)) {
    return (parsed as RawPathInfo[]).map((raw) => toPathInfo(raw.path ?? '?', raw, storeDir));
  }
  if (typeof parsed === 'object' && parsed !== null) {
    return Object.entries(parsed as Record<string, RawPathInfo | null>).map(([path, raw]) =>
      toPathInfo(fullPath(path, storeDir), raw ?? { valid: false }, storeDir),
    );
  }
  throw new Error('nix path-info --json printed neither an array nor an object');
}

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
  return new UserError(`nix could not read ${first}: ${lastLine.replace(/^error: /, '')}`, 'check the paths are valid store paths (nix-store --check-validity PATH)');
}

export async function queryPathInfo(paths: string[], options: { recursive?: boolean; storeDir?: string } = {}): Promise<PathInfo[]> {
  const byPath = new Map<string, PathInfo>();
  for (let start = 0; start < paths.length; start += ARGS_PER_CALL) {
    const batch = paths.slice(start, start + ARGS_PER_CALL);
    const args = [...NIX, 'path-info', '--json', ...(options.recursive ? ['--recursive'] : []), ...batch];
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync('nix', args, { maxBuffer: 1 << 30, encoding: 'utf8' }));
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
      const { stdout } = await execFileAsync('nix-store', ['--check-validity', '--print-invalid', ...batch], { maxBuffer: 1 << 28, encoding: 'utf8' });
      for (const line of stdout.split('\n')) if (line) invalid.add(line);
    } catch (error) {
      throw nixFailure(error, batch);
    }
  }
  return paths.filter((path) => !invalid.has(path));
}

/**
 * Turns what the user typed into store paths: a store path stays as it is (it may itself be a
 * symlink), anything else (./result) is followed to where it points, which must be a store path.
 */
export async function resolveStorePaths(args: string[], storeDir = DEFAULT_STORE_DIR): Promise<string[]> {
  const resolved: string[] = [];
  for (const arg of args) {
    const trimmed = arg.replace(/\/+$/, '');
    if (trimmed.startsWith(`${storeDir}/`) && isStorePath(trimmed, storeDir)) {
      resolved.push(trimmed);
      continue;
    }
    let target: string;
    try {
      target = await realpath(trimmed);
    } catch {
      throw new UserError(`'${arg}' does not exist`, 'give store paths like /nix/store/<hash>-<name>, or a ./result link');
    }
    if (!isStorePath(target, storeDir)) {
      const inside = target.startsWith(`${storeDir}/`);
      throw new UserError(
        inside ? `'${arg}' is inside a store path, not a store path (${target})` : `'${arg}' is not a store path (it is ${target})`,
        `give store paths like ${storeDir}/<hash>-<name>, or a ./result link`,
      );
    }
    resolved.push(target);
  }
  return resolved;
}
