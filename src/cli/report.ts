import type { ContextStreams } from '../context.js';
import { UserError } from '../errors.js';
import { redactSecrets } from '../redact.js';

/** Where a run's results and logs go, and the environment it sees: the process's, or a test's. */
export interface CliIo extends ContextStreams {
  env: NodeJS.ProcessEnv;
}

/** A command's failure on stderr, in one line and a hint (a stack only when verbose); the exit code. */
export function report(error: unknown, verbose: boolean, stderr: CliIo['stderr']): number {
  if (error instanceof UserError) {
    stderr.write(`cachix: ${redactSecrets(error.message)}\n`);
    if (error.hint) stderr.write(`  ${redactSecrets(error.hint)}\n`);
    if (verbose && error.cause) stderr.write(redactSecrets(String((error.cause as Error).stack ?? error.cause)) + '\n');
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`cachix: ${redactSecrets(message)}\n`);
  if (verbose) stderr.write(redactSecrets(String((error as Error).stack ?? '')) + '\n');
  else stderr.write('  (run with --verbose for details)\n');
  return 1;
}
