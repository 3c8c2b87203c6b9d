import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** Peak resident memory of one process, from the kernel's own high-water mark (VmHWM). */
async function highWaterMarkKiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A process's resident memory now (VmRSS, kB -> bytes). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

export interface MeasuredRun {
  code: number | null;
  stdout: string;
  stderr: string;
  peakRssMiB: number;
  wallMs: number;
}

/**
 * Runs a command and samples its VmHWM every 50 ms until it exits: the last sample before exit
 * is the process's peak resident memory (worker threads included, they share the process).
 */
export function runMeasuringMemory(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakKiB = 0;
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setInterval(() => {
      void highWaterMarkKiB(child.pid!).then((kib) => {
        if (kib !== undefined) peakKiB = Math.max(peakKiB, kib);
      });
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, peakRssMiB: peakKiB / 1024, wallMs: Date.now() - started });
    });
  });
}
