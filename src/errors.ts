/**
 * A mistake the user can fix: printed as one line (plus an optional hint line) with no stack,
 * unless --verbose. Anything thrown that is not a UserError is a bug and says so.
 */
export class UserError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(message: string, hint?: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.hint = hint;
    this.exitCode = exitCode;
  }
}

/** A server that answers, but not as a Nix binary cache (a web page for every URL): one line, not one per path. */
export class NotABinaryCacheError extends UserError {
  constructor(url: string, what: string) {
    super(
      `not a binary cache at ${url}: ${what}`,
      "check the URL: it must be the folder that holds nix-cache-info, as in Nix's substituters",
    );
    this.name = 'NotABinaryCacheError';
  }
}

// Exit codes: 0 ok, 1 user error (UserError's default), 2 usage error. watch-exec passes its
// command's code through (127: the command could not be started); watch-store stopped by a
// second signal: 130/143.
export const EXIT_USAGE = 2;

/** The message of anything thrown, for logs that must not print a stack. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

// Node's filesystem errors in words a user can act on: "EACCES: permission denied, mkdir '…'"
// says neither what we were doing nor what to change; the caller says the first, this the second.
const FS_PROBLEMS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory, not a file',
  ENOENT: 'it does not exist',
};

/** "permission denied" and the like for a filesystem error, or its message when the code is unknown. */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (code && FS_PROBLEMS[code]) || messageOf(error);
}

/** A place on disk as a message about it names it, and the advice its owner knows best. */
export interface FsPlace {
  path: string;
  /** How messages name it, when not by its path: "the cache at /srv/cache". */
  name?: string;
  /** What it is for, when the name does not say: "where compressed NARs are written before upload". */
  role?: string;
  /** What was being done to it: "write" unless said. */
  doing?: string;
  /** Hints for a full disk, a read-only file system, a refused permission; general advice otherwise. */
  hints?: { full?: string; readOnly?: string; denied?: string };
}

/**
 * The one errno-to-advice mapper: a full disk, a read-only file system or a refused permission
 * on `place` as a UserError that says where and what to do; any other error as it is.
 */
export function fsErrorToUser(error: unknown, place: FsPlace): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const name = place.name ?? place.path;
  const role = place.role ? `, ${place.role}` : '';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(
        `no space left on the device holding ${place.path}${role}`,
        place.hints?.full ?? 'free some space and try again',
      );
    case 'EROFS':
      return new UserError(
        place.role ? `${name} is on a read-only file system, and it is ${place.role}` : `${name} is on a read-only file system`,
        place.hints?.readOnly,
      );
    case 'EACCES':
    case 'EPERM':
      return new UserError(
        `no permission to ${place.doing ?? 'write'} ${name}${role}`,
        place.hints?.denied ?? 'check its owner and mode, or run as a user who can write it',
      );
    default:
      return error;
  }
}
