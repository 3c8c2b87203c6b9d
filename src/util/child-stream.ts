import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { UserError } from '../errors.js';

// A program used as one stream stage (xz and bzip2, whose libraries Node cannot load): bytes go
// to its stdin and come back from its stdout, with backpressure both ways. The stage fails with
// the program's own stderr when it exits non-zero, and with what to install when it is missing.

export interface ChildStream {
  stream: Duplex;
  /** Settles when the program has exited; awaited after the pipeline, so never left unhandled. */
  done: Promise<void>;
}

export function childStream(program: string, args: readonly string[], installHint: string): ChildStream {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const stream = Duplex.from({ writable: child.stdin, readable: child.stdout });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) => {
      const failure =
        error.code === 'ENOENT'
          ? new UserError(`cannot run ${program}: it is not on PATH`, installHint)
          : new Error(`${program}: ${error.message}`);
      stream.destroy(failure);
      reject(failure);
    });
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const failure = new Error(`${program} ${args.join(' ')} failed: ${stderr.trim() || `exit ${code}`}`);
      stream.destroy(failure);
      reject(failure);
    });
  });
  done.catch(() => undefined);
  return { stream, done };
}
