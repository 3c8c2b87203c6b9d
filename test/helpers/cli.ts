import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const CACHIX_BIN = resolve(import.meta.dirname, '../../bin/cachix');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real built CLI as a user would, with CI=true so output is plain lines. */
export function cachix(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CACHIX_BIN, ...args], {
      env: { ...process.env, CI: 'true', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
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
