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

// Exit codes: 0 ok, 1 user error (UserError's default), 2 usage error. watch-exec passes its
// command's code through (127: the command could not be started); watch-store stopped by a
// second signal: 130/143.
export const EXIT_USAGE = 2;

/** The message of anything thrown, for logs that must not print a stack. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
