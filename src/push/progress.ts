import type { Ora } from 'ora';
import type { OutputStream } from '../context.js';
import { formatBytes } from '../util/quantities.js';

/** What the push pipeline reports as it goes; the command decides how it looks. */
export interface Progress {
  start(totalPaths: number, totalNarBytes: number): void;
  /** `streamedBytes`: how much of this path was already reported through narBytesRead. */
  pathDone(storePath: string, narSize: number, fileSize: number, streamedBytes?: number): void;
  /** NAR bytes read so far of paths still in flight, so a terminal shows a large path moving. */
  narBytesRead?(bytes: number): void;
  log(line: string): void;
  finish(summaryLine: string): void;
  /** Writes out lines held back, before an error or an interruption is reported. */
  flush?(): void;
}

/**
 * Plain lines on stderr: CI logs and pipes get one line per pushed path, no escape codes. Lines
 * of paths finished in one turn of the event loop go out in one write: a push of ten thousand
 * tiny paths would otherwise spend a tenth of its main thread on writes to a pipe.
 */
class LineProgress implements Progress {
  private total = 0;
  private done = 0;
  private pending = '';
  private flushScheduled: NodeJS.Immediate | undefined;

  constructor(private readonly stderr: OutputStream) {}

  start(totalPaths: number, totalNarBytes: number): void {
    // watch-store pushes batch after batch through one Progress: each batch counts afresh.
    this.total = totalPaths;
    this.done = 0;
    if (totalPaths > 0) this.write(`pushing ${totalPaths} paths (${formatBytes(totalNarBytes)} of NAR)\n`);
  }

  pathDone(storePath: string, narSize: number, fileSize: number): void {
    this.done++;
    this.pending += `[${this.done}/${this.total}] pushed ${storePath} (${formatBytes(narSize)} -> ${formatBytes(fileSize)})\n`;
    if (this.pending.length >= LINE_BATCH_CHARS) this.flush();
    else this.flushScheduled ??= setImmediate(() => this.flush());
  }

  log(line: string): void {
    this.write(`${line}\n`);
  }

  finish(summaryLine: string): void {
    this.write(`${summaryLine}\n`);
  }

  private write(text: string): void {
    this.pending += text;
    this.flush();
  }

  flush(): void {
    clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    if (this.pending) this.stderr.write(this.pending);
    this.pending = '';
  }
}

const LINE_BATCH_CHARS = 16 << 10;

/** An ora spinner with paths done/total, bytes and rate, for people at a terminal. */
class SpinnerProgress implements Progress {
  private total = 0;
  private totalBytes = 0;
  private done = 0;
  private doneBytes = 0;
  /** Bytes of paths not yet done, as reported while they stream. */
  private streamingBytes = 0;
  private readonly startedAt = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly spinner: Ora,
    private readonly stderr: OutputStream,
  ) {}

  start(totalPaths: number, totalNarBytes: number): void {
    this.total = totalPaths;
    this.totalBytes = totalNarBytes;
    this.done = 0;
    this.doneBytes = 0;
    this.streamingBytes = 0;
    if (totalPaths > 0) this.spinner.start(this.text());
  }

  private text(): string {
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const bytes = Math.min(this.doneBytes + this.streamingBytes, this.totalBytes);
    return `pushing ${this.done}/${this.total} paths, ${formatBytes(bytes)}/${formatBytes(this.totalBytes)} of NAR, ${formatBytes(bytes / seconds)}/s`;
  }

  pathDone(_storePath: string, narSize: number, _fileSize: number, streamedBytes = 0): void {
    this.done++;
    this.doneBytes += narSize;
    this.streamingBytes = Math.max(0, this.streamingBytes - streamedBytes);
    this.spinner.text = this.text();
  }

  narBytesRead(bytes: number): void {
    this.streamingBytes += bytes;
    // Redrawn at most every 100 ms: text updates per MiB would cost more than the drawing is worth.
    if (Date.now() - this.lastDraw >= 100) {
      this.lastDraw = Date.now();
      this.spinner.text = this.text();
    }
  }

  log(line: string): void {
    this.spinner.clear();
    this.stderr.write(`${line}\n`);
    if (this.spinner.isSpinning) this.spinner.render();
  }

  finish(summaryLine: string): void {
    if (this.spinner.isSpinning) this.spinner.succeed(summaryLine);
    else this.stderr.write(`${summaryLine}\n`);
  }
}

function wantsPlainOutput(stderr: OutputStream, env: NodeJS.ProcessEnv): boolean {
  return env.CI === 'true' || env.CI === '1' || !stderr.isTTY || env.TERM === 'dumb';
}

/** ora is loaded only on a terminal, so CI runs and --help never pay for it. */
export async function createProgress(stderr: OutputStream, env: NodeJS.ProcessEnv): Promise<Progress> {
  if (wantsPlainOutput(stderr, env)) return new LineProgress(stderr);
  const { default: ora } = await import('ora');
  // Plain output above is chosen whenever stderr is not a terminal, so here it is the process's.
  return new SpinnerProgress(ora({ stream: process.stderr, discardStdin: false }), stderr);
}
