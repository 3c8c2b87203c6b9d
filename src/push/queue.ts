import { messageOf } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import { RecentSet } from '../store/watch-recent.js';
import type { PushSummary } from './pipeline.js';

export interface PushQueueOptions {
  /** Pushes these paths and their closures (pushPaths with the cache and options bound). */
  push(paths: string[]): Promise<PushSummary>;
  /** Of these paths, the ones still valid: a garbage-collected path is dropped, not retried. */
  stillValid(paths: string[]): Promise<string[]>;
  log(line: string): void;
  /** Paths waiting, at most; `add` waits for room beyond this. */
  maxPending?: number;
  /** Paths handed to one push; closures and cache lookups are shared within a batch. */
  batchSize?: number;
  /** How many pushed hash parts are remembered, so repeated events cost nothing. */
  rememberPushed?: number;
  /** Attempts per path before it is given up while watching; while draining, fewer. */
  maxAttempts?: number;
  maxAttemptsWhenDraining?: number;
  /** Delay before retry number `failures` (1, 2, ...), after consecutive failed batches. */
  retryDelayMs?(failures: number): number;
}

/** Push totals over the whole watch; `failed` counts paths given up after repeated failures. */
export type QueueTotals = PushSummary;

const DRAINING_RETRY_DELAY_MS = 5_000;

/** 1 s, 2 s, 4 s ... up to a minute: a cache that is down is not hammered, one that is back is used soon. */
function defaultRetryDelay(failures: number): number {
  return Math.min(1000 * 2 ** (failures - 1), 60_000);
}

/**
 * The queue between the store watcher and the push pipeline. It pushes in batches, one batch at
 * a time (the pipeline itself uploads `jobs` paths at once), keeps memory bounded (pending paths
 * and a bounded set of pushed hash parts), and outlives failures: a failed batch is logged in
 * one line and retried after a growing delay, in smaller batches each time, so one path that
 * keeps failing ends up alone and cannot hold the others back.
 */
export class PushQueue {
  readonly totals: QueueTotals = { pushed: 0, skipped: 0, failed: 0, narBytes: 0, fileBytes: 0 };
  /** hash part -> store path, in arrival order; a Map so duplicates collapse. */
  private pending = new Map<string, string>();
  private readonly inFlight = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly pushed: RecentSet;
  private readonly maxPending: number;
  private readonly batchSize: number;
  private consecutiveFailures = 0;
  private worker: Promise<void> | undefined;
  private draining = false;
  private aborted = false;
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private wakeSleeper: (() => void) | undefined;

  constructor(private readonly options: PushQueueOptions) {
    this.maxPending = options.maxPending ?? 10_000;
    this.batchSize = options.batchSize ?? 1_000;
    this.pushed = new RecentSet(options.rememberPushed ?? 100_000);
  }

  /** Paths waiting or being pushed right now: what would be lost by stopping at once. */
  get unpushed(): number {
    return this.pending.size + this.inFlight.size;
  }

  /** Queues paths not pushed recently; waits while the queue is full (backpressure). */
  async add(paths: string[]): Promise<void> {
    for (const path of paths) {
      const hashPart = hashPartOf(path);
      if (this.pushed.has(hashPart) || this.pending.has(hashPart) || this.inFlight.has(hashPart)) continue;
      while (this.pending.size >= this.maxPending && !this.aborted) {
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      }
      if (this.aborted) return;
      this.pending.set(hashPart, path);
      this.startWorker();
    }
  }

  /** Pushes everything queued (giving up sooner on failures) and resolves when nothing is left. */
  async drain(): Promise<QueueTotals> {
    this.draining = true;
    this.wakeSleeper?.();
    while (this.worker || (this.pending.size > 0 && !this.aborted)) {
      this.startWorker();
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    return this.totals;
  }

  /** Stops at once: nothing new starts; returns how many paths are left unpushed. */
  abort(): number {
    this.aborted = true;
    this.wakeSleeper?.();
    for (const wake of this.roomWaiters.splice(0)) wake();
    return this.unpushed;
  }

  private startWorker(): void {
    if (this.worker || this.aborted || this.pending.size === 0) return;
    this.worker = this.work().finally(() => {
      this.worker = undefined;
      for (const wake of this.idleWaiters.splice(0)) wake();
      if (!this.aborted && this.pending.size > 0) this.startWorker();
    });
  }

  private takeBatch(): Array<[string, string]> {
    // After failures the batch halves each time, down to a single path.
    const size = Math.max(1, this.batchSize >> Math.min(this.consecutiveFailures, 30));
    const batch: Array<[string, string]> = [];
    for (const entry of this.pending) {
      if (batch.length >= size) break;
      batch.push(entry);
    }
    for (const [hashPart] of batch) {
      this.pending.delete(hashPart);
      this.inFlight.add(hashPart);
    }
    for (const wake of this.roomWaiters.splice(0)) wake();
    return batch;
  }

  private async work(): Promise<void> {
    while (this.pending.size > 0 && !this.aborted) {
      const batch = this.takeBatch();
      try {
        await this.pushBatch(batch);
      } finally {
        this.inFlight.clear();
      }
      if (this.consecutiveFailures > 0 && !this.aborted) {
        const delay = (this.options.retryDelayMs ?? defaultRetryDelay)(this.consecutiveFailures);
        // Someone is waiting for us to stop: do not make them wait a minute per retry.
        await this.sleep(this.draining ? Math.min(delay, DRAINING_RETRY_DELAY_MS) : delay);
      }
    }
  }

  private async pushBatch(batch: Array<[string, string]>): Promise<void> {
    const paths = batch.map(([, path]) => path);
    try {
      const summary = await this.options.push(paths);
      this.count(summary);
      for (const [hashPart] of batch) {
        this.pushed.add(hashPart);
        this.attempts.delete(hashPart);
      }
      this.consecutiveFailures = 0;
    } catch (error) {
      if (this.aborted) return;
      this.consecutiveFailures++;
      await this.requeue(batch, error);
    }
  }

  private count(summary: PushSummary): void {
    this.totals.pushed += summary.pushed;
    this.totals.skipped += summary.skipped;
    this.totals.narBytes += summary.narBytes;
    this.totals.fileBytes += summary.fileBytes;
  }

  /** Puts a failed batch back at the front, minus paths that are gone or failed too often. */
  private async requeue(batch: Array<[string, string]>, error: unknown): Promise<void> {
    const paths = batch.map(([, path]) => path);
    let valid: Set<string>;
    try {
      valid = new Set(await this.options.stillValid(paths));
    } catch {
      valid = new Set(paths);
    }
    const limit = this.draining ? (this.options.maxAttemptsWhenDraining ?? 3) : (this.options.maxAttempts ?? 10);
    const retry: Array<[string, string]> = [];
    const givenUp: string[] = [];
    for (const [hashPart, path] of batch) {
      const attempts = (this.attempts.get(hashPart) ?? 0) + 1;
      if (!valid.has(path)) {
        this.attempts.delete(hashPart);
        this.options.log(`${path} is no longer valid (garbage collected?); not pushing it`);
      } else if (attempts >= limit) {
        this.attempts.delete(hashPart);
        givenUp.push(path);
      } else {
        this.attempts.set(hashPart, attempts);
        retry.push([hashPart, path]);
      }
    }
    const what = paths.length === 1 ? paths[0] : `${paths.length} paths`;
    const next = retry.length > 0 ? `; retrying ${retry.length === paths.length ? 'them' : `${retry.length} of them`} later` : '';
    this.options.log(`push of ${what} failed: ${messageOf(error)}${next}`);
    if (givenUp.length > 0) {
      this.totals.failed += givenUp.length;
      this.options.log(`gave up on ${givenUp.length === 1 ? givenUp[0] : `${givenUp.length} paths`} after ${limit} attempts`);
    }
    this.pending = new Map([...retry, ...this.pending]);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleeper = () => {
        this.wakeSleeper = undefined;
        done();
      };
    });
  }
}
