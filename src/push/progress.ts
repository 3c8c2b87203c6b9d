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
  /** A failure or warning: shown even where `log` lines are not (--quiet). Without it, `log`. */
  warn?(line: string): void;
  finish(summaryLine: string): void;
  /** Writes out lines held back, before an error or an interruption is reported. */
  flush?(): void;
  /** Per-path events, for those that follow single paths (the daemon's push events). */
  pathStarted?(storePath: string, narSize: number): void;
  /** NAR bytes of this path read so far (`cumulative`), `delta` of them since the last call. */
  pathProgress?(storePath: string, cumulative: number, delta: number): void;
  /** Paths of a closure not uploaded: already in the cache, served upstream or excluded. */
  pathsSkipped?(storePaths: readonly string[]): void;
}

/** What progress lines call the work: a push says "pushing" and "pushed", a copy "copying" and "copied". */
export interface ProgressWords {
  doing: string;
  done: string;
}

const PUSH_WORDS: ProgressWords = { doing: 'pushing', done: 'pushed' };

/** A failure or warning line: never dropped by --quiet. */
export function warnLine(progress: Progress, line: string): void {
  if (progress.warn) progress.warn(line);
  else progress.log(line);
}

/**
 * --quiet: failures, warnings and the closing summary, nothing else: no per-path lines, no
 * spinner, no notes on what is being watched.
 */
export class QuietProgress implements Progress {
  constructor(private readonly stderr: OutputStream) {}

  start(): void {}

  pathDone(): void {}

  log(): void {}

  warn(line: string): void {
    this.stderr.write(`${line}\n`);
  }

  finish(summaryLine: string): void {
    this.stderr.write(`${summaryLine}\n`);
  }
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

  constructor(
    private readonly stderr: OutputStream,
    private readonly words: ProgressWords = PUSH_WORDS,
  ) {}

  start(totalPaths: number, totalNarBytes: number): void {
    // watch-store pushes batch after batch through one Progress: each batch counts afresh.
    this.total = totalPaths;
    this.done = 0;
    if (totalPaths > 0) this.write(`${this.words.doing} ${totalPaths} paths (${formatBytes(totalNarBytes)} of NAR)\n`);
  }

  /** Carries on counting where a spinner that gave up on its terminal left off. */
  resume(totalPaths: number, donePaths: number): void {
    this.total = totalPaths;
    this.done = donePaths;
  }

  pathDone(storePath: string, narSize: number, fileSize: number): void {
    this.done++;
    this.pending += `[${this.done}/${this.total}] ${this.words.done} ${storePath} (${formatBytes(narSize)} -> ${formatBytes(fileSize)})\n`;
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

/**
 * An ora spinner with paths done/total, bytes and rate, for people at a terminal. A terminal made
 * narrower than a progress line while we draw (or one that reports 0 columns) gets plain lines
 * from then on.
 */
class SpinnerProgress implements Progress {
  private total = 0;
  private totalBytes = 0;
  private done = 0;
  private doneBytes = 0;
  /** Bytes of paths not yet done, as reported while they stream. */
  private streamingBytes = 0;
  private readonly startedAt = Date.now();
  private lastDraw = 0;
  /** Set once the terminal is too narrow to draw on: every later event goes here. */
  private lines: LineProgress | undefined;

  constructor(
    private readonly spinner: Ora,
    private readonly stderr: OutputStream,
    terminal: TerminalStream,
    private readonly words: ProgressWords = PUSH_WORDS,
  ) {
    const onResize = (): void => {
      if ((terminal.columns ?? 0) >= MIN_PROGRESS_COLUMNS) return;
      terminal.off?.('resize', onResize);
      this.switchToLines();
    };
    terminal.on?.('resize', onResize);
  }

  private switchToLines(): void {
    if (this.lines) return;
    if (this.spinner.isSpinning) this.spinner.stop();
    this.lines = new LineProgress(this.stderr, this.words);
    this.lines.resume(this.total, this.done);
    this.lines.log(`the terminal is narrower than ${MIN_PROGRESS_COLUMNS} columns: progress goes on in plain lines`);
  }

  start(totalPaths: number, totalNarBytes: number): void {
    if (this.lines) return this.lines.start(totalPaths, totalNarBytes);
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
    return `${this.words.doing} ${this.done}/${this.total} paths, ${formatBytes(bytes)}/${formatBytes(this.totalBytes)} of NAR, ${formatBytes(bytes / seconds)}/s`;
  }

  pathDone(storePath: string, narSize: number, fileSize: number, streamedBytes = 0): void {
    if (this.lines) return this.lines.pathDone(storePath, narSize, fileSize);
    this.done++;
    this.doneBytes += narSize;
    this.streamingBytes = Math.max(0, this.streamingBytes - streamedBytes);
    this.spinner.text = this.text();
  }

  narBytesRead(bytes: number): void {
    if (this.lines) return;
    this.streamingBytes += bytes;
    // Redrawn at most every 100 ms: text updates per MiB would cost more than the drawing is worth.
    if (Date.now() - this.lastDraw >= 100) {
      this.lastDraw = Date.now();
      this.spinner.text = this.text();
    }
  }

  log(line: string): void {
    if (this.lines) return this.lines.log(line);
    this.spinner.clear();
    this.stderr.write(`${line}\n`);
    if (this.spinner.isSpinning) this.spinner.render();
  }

  finish(summaryLine: string): void {
    if (this.lines) return this.lines.finish(summaryLine);
    if (this.spinner.isSpinning) this.spinner.succeed(summaryLine);
    else this.stderr.write(`${summaryLine}\n`);
  }

  /** Before an error or an interruption is reported: the spinner goes, so the report stands alone. */
  flush(): void {
    if (this.lines) return this.lines.flush();
    if (this.spinner.isSpinning) this.spinner.stop();
  }
}

/** What the spinner needs of a terminal: Node's tty.WriteStream has all of it. */
interface TerminalStream extends OutputStream {
  columns?: number;
  rows?: number;
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

/**
 * Narrower than this, a progress line wraps into a pile of lines: such a terminal (and a pseudo-
 * terminal with no size, which reports 0 columns, as `script` and many CI runners make) gets
 * plain lines.
 */
const MIN_PROGRESS_COLUMNS = 40;

/**
 * The terminal as ora sees it: never narrower than MIN_PROGRESS_COLUMNS. ora divides by the
 * columns to know how many lines to clear, and 0 columns made that Infinity: a clear that never
 * ended, on the main thread, so not even SIGTERM was handled. A resize below the minimum switches
 * to plain lines (above), and this keeps ora's arithmetic finite in the moment before.
 */
function boundedTerminal(terminal: NodeJS.WriteStream): NodeJS.WriteStream {
  const view = {
    isTTY: true,
    get columns() {
      return Math.max(terminal.columns || 0, MIN_PROGRESS_COLUMNS);
    },
    get rows() {
      return terminal.rows;
    },
    write: (...args: Parameters<NodeJS.WriteStream['write']>) => terminal.write(...args),
    cursorTo: (x: number, y?: number) => terminal.cursorTo(x, y),
    moveCursor: (dx: number, dy: number) => terminal.moveCursor(dx, dy),
    clearLine: (dir: -1 | 0 | 1) => terminal.clearLine(dir),
    once: (event: string, listener: () => void) => terminal.once(event, listener),
    removeListener: (event: string, listener: () => void) => terminal.removeListener(event, listener),
  };
  return view as unknown as NodeJS.WriteStream;
}

function wantsPlainOutput(stderr: TerminalStream, env: NodeJS.ProcessEnv): boolean {
  if (env.CI === 'true' || env.CI === '1' || !stderr.isTTY || env.TERM === 'dumb') return true;
  return (stderr.columns ?? 0) < MIN_PROGRESS_COLUMNS;
}

/** ora is loaded only on a terminal, so CI runs and --help never pay for it. */
export async function createProgress(
  stderr: TerminalStream,
  env: NodeJS.ProcessEnv,
  quiet = false,
  words: ProgressWords = PUSH_WORDS,
): Promise<Progress> {
  if (quiet) return new QuietProgress(stderr);
  if (wantsPlainOutput(stderr, env)) return new LineProgress(stderr, words);
  const { default: ora } = await import('ora');
  // Plain output above is chosen whenever stderr is not a terminal, so here it is the process's.
  const spinner = ora({ stream: boundedTerminal(process.stderr), discardStdin: false });
  return new SpinnerProgress(spinner, stderr, process.stderr, words);
}
