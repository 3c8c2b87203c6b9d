import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { runCli } from '../../src/cli.js';

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
