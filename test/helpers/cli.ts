import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { runCli } from '../../src/cli.js';
import { waitUntil } from './wait.js';

export const CACHIX_BIN = resolve(import.meta.dirname, '../../bin/cachix');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real built CLI as a user would, with CI=true so output is plain lines. */
export function cachix(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CACHIX_BIN, ...args], {
      env: { ...process.env, CI: 'true', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: options.cwd,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running cachix (watch-store, watch-exec, daemon run) started by startCachix. */
export interface RunningCachix {
  child: ChildProcess;
  pid: number;
  /** Its stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Its exit code (null when a signal ended it). */
  exitCode: Promise<number | null>;
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

/** Starts the built CLI as a user would, CI=true, and leaves it running: the test decides when it stops. */
export function startCachix(args: string[], env: NodeJS.ProcessEnv): RunningCachix {
  const child = spawn(process.execPath, [CACHIX_BIN, ...args], {
    env: { ...process.env, CI: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolveDone) =>
    child.on('close', (code, signal) => resolveDone({ code, signal, stderr })),
  );
  return {
    child,
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
    done,
    exitCode: done.then(({ code }) => code),
    async waitForStderr(pattern, timeoutMs = 30_000) {
      await waitUntil(`${pattern} on stderr of cachix ${args.join(' ')}`, () => pattern.test(stderr), {
        timeoutMs,
        details: () => stderr,
      });
    },
  };
}

/**
 * Runs a command line in this process, through the same runCli as the binary, with its own
 * environment and captured output: no Node start-up per call. Only for commands that start no
 * Nix and no other program (those see this process's environment), and whose guarantees do not
 * involve the process boundary (signals, exit codes of a killed process): use `cachix` for those.
 */
export async function cachixInProcess(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env: { ...process.env, CI: 'true', ...options.env },
    stdout: { write: (text: string) => (stdout += text), isTTY: false },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    stdin: Readable.from(options.input === undefined ? [] : [Buffer.from(options.input)]),
  });
  return { code, stdout, stderr };
}
