import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  wallMs: number;
}

export interface Measured extends RunResult {
  /** Peak resident memory of the whole process tree, in bytes (see measure). */
  peakRssBytes: number;
  /** GNU time's %M: the high-water mark of the largest single process, in bytes (0 if unknown). */
  largestProcessRssBytes: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  input?: string;
}

// Whole stdout (path lists can be megabytes), only the tail of stderr (progress lines).
const KEEP_STDOUT = 64 * 1024 * 1024;
const KEEP_STDERR = 256 * 1024;
const TIME_BIN = '/usr/bin/time';

function keepTail(text: string, chunk: Buffer, limit: number): string {
  const joined = text + chunk.toString('utf8');
  return joined.length > limit ? joined.slice(-limit) : joined;
}

/**
 * Runs a command in its own process group, so a timeout kills it and everything it started.
 * `onStart` gets the pid, for sampling the tree's memory while it runs.
 */
export function runCommand(command: string, args: string[], options: RunOptions, onStart?: (pid: number) => void): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout = keepTail(stdout, chunk, KEEP_STDOUT)));
    child.stderr.on('data', (chunk: Buffer) => (stderr = keepTail(stderr, chunk, KEEP_STDERR)));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr, timedOut, wallMs: performance.now() - started });
    });
    if (child.pid !== undefined) onStart?.(child.pid);
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch {
    return children;
  }
  for (const task of tasks) {
    try {
      const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8');
      for (const word of text.split(/\s+/)) if (word) children.push(Number(word));
    } catch {
      // the task ended between readdir and read
    }
  }
  return children;
}

async function rssBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS over the tree under `root` (not counting `root` itself when it is only a wrapper). */
async function treeRss(root: number, countRoot: boolean): Promise<number> {
  let total = countRoot ? await rssBytes(root) : 0;
  const queue = await childrenOf(root);
  const seen = new Set<number>([root]);
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += await rssBytes(pid);
    queue.push(...(await childrenOf(pid)));
  }
  return total;
}

/**
 * Runs a command and measures wall time and peak memory. The peak is the larger of two lower
 * bounds: the tree's summed VmRSS sampled every 50 ms (catches several processes at once, e.g.
 * nix-store | zstd), and GNU time's %M, the exact high-water mark of the largest single process
 * (catches a spike between samples).
 */
export async function measure(command: string, args: string[], options: RunOptions): Promise<Measured> {
  const useTime = existsSync(TIME_BIN);
  const dir = await mkdtemp(join(tmpdir(), 'cachix-bench-time-'));
  const timeFile = join(dir, 'time');
  const [realCommand, realArgs] = useTime ? [TIME_BIN, ['-f', '%M', '-o', timeFile, command, ...args]] : [command, args];
  let sampledPeak = 0;
  let sampling: NodeJS.Timeout | undefined;
  let busy = false;
  try {
    const result = await runCommand(realCommand, realArgs, options, (pid) => {
      sampling = setInterval(() => {
        if (busy) return;
        busy = true;
        treeRss(pid, !useTime)
          .then((bytes) => (sampledPeak = Math.max(sampledPeak, bytes)))
          .finally(() => (busy = false));
      }, 50);
    });
    clearInterval(sampling);
    let singlePeak = 0;
    if (useTime) {
      const text = await readFile(timeFile, 'utf8').catch(() => '');
      const kilobytes = Number(text.trim().split('\n').pop());
      if (Number.isFinite(kilobytes)) singlePeak = kilobytes * 1024;
    }
    return { ...result, peakRssBytes: Math.max(sampledPeak, singlePeak), largestProcessRssBytes: singlePeak };
  } finally {
    clearInterval(sampling);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Total size of the regular files under `dir` (the bytes a cache holds, not blocks). */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
