import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { runCommand } from './measure.js';

export interface Machine {
  cores: number;
  cpu: string;
  ramGiB: number;
  node: string;
  nix: string;
  zstd: string;
  loadAtStart: string;
}

async function versionOf(command: string, args: string[]): Promise<string> {
  try {
    const result = await runCommand(command, args, { timeoutMs: 10_000 });
    return result.stdout.trim().split('\n')[0] ?? '?';
  } catch {
    return 'not found';
  }
}

export async function describeMachine(): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    cores: availableParallelism(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    ramGiB: totalmem() / 2 ** 30,
    node: process.version,
    nix: await versionOf('nix', ['--version']),
    zstd: /v\d+\.\d+\.\d+/.exec(await versionOf('zstd', ['--version']))?.[0] ?? '?',
    loadAtStart: loadavg()
      .map((load) => load.toFixed(2))
      .join(' '),
  };
}

/** One timed run in the throughput table. */
export interface ThroughputRow {
  name: string;
  wallMs?: number | undefined;
  narBytes: number;
  outputBytes?: number | undefined;
  peakRssBytes?: number | undefined;
  note?: string | undefined;
}

/** One target: measured against a goal, PASS or MISS (or FAIL when the step did not run). */
export interface TargetRow {
  name: string;
  measured: string;
  goal: string;
  pass: boolean | undefined;
}

/** One plain timing (no-op pushes, start-up). */
export interface TimingRow {
  name: string;
  wallMs?: number | undefined;
  peakRssBytes?: number | undefined;
  note?: string | undefined;
}

export const MB = 1e6;

export function seconds(ms: number | undefined): string {
  if (ms === undefined) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function megabytes(bytes: number | undefined): string {
  if (bytes === undefined) return '—';
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / MB).toFixed(1)} MB`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderMarkdown(input: {
  machine: Machine;
  settings: string;
  throughput: ThroughputRow[];
  timings: TimingRow[];
  targets: TargetRow[];
  failures: string[];
  totalMs: number;
}): string {
  const { machine } = input;
  const parts: string[] = [];
  parts.push(`## Benchmark (\`npm run bench\`)`);
  parts.push(
    `Machine: ${machine.cores} cores, ${machine.cpu}, ${machine.ramGiB.toFixed(1)} GiB RAM; ` +
      `Node ${machine.node}; ${machine.nix}; zstd ${machine.zstd}; load average at start ${machine.loadAtStart}.  \n` +
      `${input.settings}  \nWhole run: ${seconds(input.totalMs)}.`,
  );
  parts.push(
    table(
      ['Push of the big closure', 'Wall', 'NAR MB/s', 'Output', 'Peak RSS (tree)', 'Note'],
      input.throughput.map((row) => [
        row.name,
        seconds(row.wallMs),
        row.wallMs ? (row.narBytes / MB / (row.wallMs / 1000)).toFixed(1) : '—',
        megabytes(row.outputBytes),
        megabytes(row.peakRssBytes),
        row.note ?? '',
      ]),
    ),
  );
  parts.push(
    table(
      ['Timing', 'Wall', 'Peak RSS (tree)', 'Note'],
      input.timings.map((row) => [row.name, seconds(row.wallMs), megabytes(row.peakRssBytes), row.note ?? '']),
    ),
  );
  parts.push(
    table(
      ['Target', 'Measured', 'Goal', 'Result'],
      input.targets.map((row) => [
        row.name,
        row.measured,
        row.goal,
        row.pass === undefined ? 'FAIL (not measured)' : row.pass ? 'PASS' : 'MISS',
      ]),
    ),
  );
  if (input.failures.length > 0) parts.push(`Failed steps:\n\n${input.failures.map((failure) => `- ${failure}`).join('\n')}`);
  return parts.join('\n\n') + '\n';
}
