import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type * as Entry from '../../src/entry.js';
import type * as Redact from '../../src/redact.js';
import { waitUntil } from './wait.js';

export const CACHIX_BIN = resolve(import.meta.dirname, '../../bin/cachix');
/** The built entry bin/cachix runs (dist/, built by the global setup): the code a user runs. */
const built = (path: string): string => pathToFileURL(resolve(import.meta.dirname, '../../dist', path)).href;
const { runEntry } = (await import(built('entry.js'))) as typeof Entry;
const { forgetSecrets } = (await import(built('redact.js'))) as typeof Redact;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment in-process runs share while any runs: see cachixInProcess. */
let sharedEnv: { env: NodeJS.ProcessEnv; saved: NodeJS.ProcessEnv; runs: number } | undefined;

/**
 * This test process's own environment. While a run is in process, process.env is that run's
 * (its overrides included), and another command line must not inherit them.
 */
function testEnv(): NodeJS.ProcessEnv {
  return sharedEnv?.saved ?? process.env;
}

/** Runs the real built CLI as a user would, with CI=true so output is plain lines. */
export function cachix(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CACHIX_BIN, ...args], {
      env: { ...testEnv(), CI: 'true', ...options.env },
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
    env: { ...testEnv(), CI: 'true', ...env },
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
 * What only a process of its own honours: Node reads NODE_* at its start, worker threads keep the
 * TMPDIR of the run that started them, and a held run is counted by its pid.
 */
const PROCESS_ONLY_ENV = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'TMPDIR', 'CACHIX_TEST_HOLD'];

/**
 * Runs a command line as a test's step: in this process (cachixInProcess) when it can, or as the
 * built binary (`cachix`) when its environment asks for something only a process of its own
 * honours, or when a run in this process with another environment is under way.
 */
export function cachixRun(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  const env = runEnv(options.env);
  const ownProcess =
    PROCESS_ONLY_ENV.some((name) => env[name] !== testEnv()[name]) || (sharedEnv !== undefined && !sameEnv(sharedEnv.env, env));
  return ownProcess ? cachix(args, options) : cachixInProcess(args, options);
}

/**
 * Runs a command line in this process, through the same built entry as the binary (runEntry),
 * with its own environment and captured output: no Node start-up per call. While it runs,
 * process.env is its environment, so the Nix, nix-store and AWS SDK it starts see what a spawned
 * CLI's would; runs at once share it, and must ask for the same one. Each run starts knowing no
 * secret, as a process does. Not for guarantees about the process boundary (signals, a killed
 * process, a closed stdout, a TTY, a child on our stdio, Node's own start): use `cachix` there.
 */
export async function cachixInProcess(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  const env = runEnv(options.env);
  if (sharedEnv && !sameEnv(sharedEnv.env, env))
    throw new Error(
      `cachixInProcess ${args.join(' ')}: another run in this process has a different environment; spawn one of them (cachix)`,
    );
  if (!sharedEnv) {
    forgetSecrets();
    sharedEnv = { env, saved: process.env, runs: 0 };
  }
  const shared = sharedEnv;
  shared.runs += 1;
  process.env = env;
  let stdout = '';
  let stderr = '';
  try {
    const code = await runEntry(args, {
      env,
      stdout: { write: (text: string) => (stdout += text), isTTY: false },
      stderr: { write: (text: string) => (stderr += text), isTTY: false },
      stdin: Readable.from(options.input === undefined ? [] : [Buffer.from(options.input)]),
    });
    return { code, stdout, stderr };
  } finally {
    shared.runs -= 1;
    if (shared.runs === 0) {
      process.env = shared.saved;
      sharedEnv = undefined;
    }
  }
}

/** A run's whole environment, as a spawned CLI gets it: this process's, CI=true, then the test's. */
function runEnv(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...testEnv(), CI: 'true', ...overrides };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return env;
}

function sameEnv(a: NodeJS.ProcessEnv, b: NodeJS.ProcessEnv): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => a[name] === b[name]);
}
