import { messageOf } from '../../errors.js';
import { hashPartOf } from '../../nix/store-path.js';
import { RecentSet } from '../../util/recent-set.js';
import type { PushSummary } from '../push-options.js';
import { addFilteredTotals } from '../path-filter.js';

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
  /** Failures of a path pushed on its own before it is given up; while draining, fewer. */
  maxAttempts?: number;
  maxAttemptsWhenDraining?: number;
  /** Delay before the next push after `failures` failed pushes in a row. */
  retryDelayMs?(failures: number): number;
  /** Paths done with: pushed (or already in the cache), or given up (`failed`, a subset, for `reason`). */
  onSettled?(paths: string[], failed: string[], reason?: string): void;
  /**
   * How long the first path waits for others to join its batch (cachix's --narinfo-batch-timeout):
   * one closure query and one cache lookup for many requests. 0: a batch starts at once.
   */
  batchWaitMs?: number;
}

/** Push totals over the whole watch; `failed` counts paths given up after repeated failures. */
export type QueueTotals = PushSummary;

/** [hash part, store path] */
type Entry = [string, string];

const DRAINING_RETRY_DELAY_MS = 5_000;

/** 1 s, 2 s, 4 s ... up to a minute: a cache that is down is not hammered, one that is back is used soon. */
function defaultRetryDelay(failures: number): number {
  return Math.min(1000 * 2 ** (failures - 1), 60_000);
}

/**
 * The queue between the store watcher and the push pipeline. It pushes in batches, one batch at
 * a time (the pipeline itself uploads `jobs` paths at once), keeps memory bounded (pending paths
 * and a bounded set of pushed hash parts), and outlives failures: a failed batch is logged in
 * one line and retried after a growing delay as two halves, so a path that keeps failing ends
 * up alone and is given up after a few tries, while the paths that were batched with it are
 * pushed. The pipeline stops a batch at its first failure, so without halving one bad path
 * would hold every other one back.
 */
export class PushQueue {
  readonly totals: QueueTotals = { pushed: 0, skipped: 0, failed: 0, narBytes: 0, fileBytes: 0 };
  /** hash part -> store path, in arrival order; a Map so duplicates collapse. */
  private readonly pending = new Map<string, string>();
  /** Halves of failed batches, pushed before anything new. */
  private readonly retries: Entry[][] = [];
  private readonly retrying = new Set<string>();
  private readonly inFlight = new Set<string>();
  /** Failures of paths that failed alone; only those can be blamed on the path itself. */
  private readonly aloneFailures = new Map<string, number>();
  private readonly pushed: RecentSet;
  private readonly maxPending: number;
  private readonly batchSize: number;
  private consecutiveFailures = 0;
  private worker: Promise<void> | undefined;
  private draining = false;
  private aborted = false;
  private readonly roomWaiters: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private wakeSleeper: (() => void) | undefined;
  /** Wakes a batch waiting for more paths, so a full batch leaves at once. */
  private batchWaker: (() => void) | undefined;

  constructor(private readonly options: PushQueueOptions) {
    this.maxPending = options.maxPending ?? 10_000;
    this.batchSize = options.batchSize ?? 1_000;
    this.pushed = new RecentSet(options.rememberPushed ?? 100_000);
  }

  /** Paths waiting or being pushed right now: what would be lost by stopping at once. */
  get unpushed(): number {
    return this.pending.size + this.inFlight.size + this.retries.reduce((total, batch) => total + batch.length, 0);
  }

  /** Queues paths not pushed recently; waits while the queue is full (backpressure). */
  async add(paths: string[]): Promise<void> {
    for (const path of paths) {
      const hashPart = hashPartOf(path);
      if (this.isKnown(hashPart)) continue;
      while (this.pending.size >= this.maxPending && !this.aborted) {
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      }
      if (this.aborted) return;
      if (this.isKnown(hashPart)) continue;
      this.pending.set(hashPart, path);
      if (this.pending.size >= this.batchSize) this.batchWaker?.();
      this.startWorker();
    }
  }

  /** Pushes everything queued (giving up sooner on failures) and resolves when nothing is left. */
  async drain(): Promise<QueueTotals> {
    this.draining = true;
    this.wakeSleeper?.();
    while (this.worker || (this.hasWork() && !this.aborted)) {
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

  /** Whether this path is waiting, being pushed, or waiting for a retry. */
  isQueued(path: string): boolean {
    const hashPart = hashPartOf(path);
    return this.pending.has(hashPart) || this.inFlight.has(hashPart) || this.retrying.has(hashPart);
  }

  private isKnown(hashPart: string): boolean {
    return this.pushed.has(hashPart) || this.pending.has(hashPart) || this.inFlight.has(hashPart) || this.retrying.has(hashPart);
  }

  private hasWork(): boolean {
    return this.pending.size > 0 || this.retries.length > 0;
  }

  private startWorker(): void {
    if (this.worker || this.aborted || !this.hasWork()) return;
    // Started a moment later, so paths added in one call go out in one batch, not one by one.
    this.worker = Promise.resolve()
      .then(() => this.work())
      .finally(() => {
        this.worker = undefined;
        for (const wake of this.idleWaiters.splice(0)) wake();
        this.startWorker();
      });
  }

  private takeBatch(): Entry[] {
    const batch = this.retries.shift() ?? [];
    if (batch.length === 0) {
      for (const entry of this.pending) {
        if (batch.length >= this.batchSize) break;
        batch.push(entry);
      }
      for (const [hashPart] of batch) this.pending.delete(hashPart);
      for (const wake of this.roomWaiters.splice(0)) wake();
    }
    for (const [hashPart] of batch) {
      this.retrying.delete(hashPart);
      this.inFlight.add(hashPart);
    }
    return batch;
  }

  private async work(): Promise<void> {
    await this.waitForBatch();
    while (this.hasWork() && !this.aborted) {
      const batch = this.takeBatch();
      try {
        await this.pushBatch(batch);
      } finally {
        this.inFlight.clear();
      }
      if (this.consecutiveFailures > 0 && this.hasWork() && !this.aborted) {
        const delay = (this.options.retryDelayMs ?? defaultRetryDelay)(this.consecutiveFailures);
        // Someone is waiting for us to stop: do not make them wait a minute per retry.
        await this.sleep(this.draining ? Math.min(delay, DRAINING_RETRY_DELAY_MS) : delay);
      }
    }
  }

  /** Lets more paths join a batch, until it is full, the wait is over, or someone waits for a drain. */
  private async waitForBatch(): Promise<void> {
    const waitMs = this.options.batchWaitMs ?? 0;
    if (waitMs <= 0 || this.draining || this.retries.length > 0 || this.pending.size >= this.batchSize) return;
    const deadline = Date.now() + waitMs;
    while (!this.draining && !this.aborted && this.pending.size < this.batchSize && Date.now() < deadline) {
      this.batchWaker = () => this.wakeSleeper?.();
      await this.sleep(deadline - Date.now());
      this.batchWaker = undefined;
    }
  }

  private async pushBatch(batch: Entry[]): Promise<void> {
    const paths = batch.map(([, path]) => path);
    try {
      const summary = await this.options.push(paths);
      this.totals.pushed += summary.pushed;
      this.totals.skipped += summary.skipped;
      this.totals.narBytes += summary.narBytes;
      this.totals.fileBytes += summary.fileBytes;
      addFilteredTotals(this.totals, summary);
      for (const [hashPart] of batch) {
        this.pushed.add(hashPart);
        this.aloneFailures.delete(hashPart);
      }
      this.consecutiveFailures = 0;
      this.options.onSettled?.(paths, []);
    } catch (error) {
      if (this.aborted) return;
      this.consecutiveFailures++;
      await this.retryLater(batch, error);
    }
  }

  /** Queues a failed batch again as two halves, minus paths that are gone or failed alone too often. */
  private async retryLater(batch: Entry[], error: unknown): Promise<void> {
    const paths = batch.map(([, path]) => path);
    let valid: Set<string>;
    try {
      valid = new Set(await this.options.stillValid(paths));
    } catch {
      valid = new Set(paths);
    }
    const limit = this.draining ? (this.options.maxAttemptsWhenDraining ?? 3) : (this.options.maxAttempts ?? 10);
    const retry: Entry[] = [];
    const gone: string[] = [];
    let givenUp: string | undefined;
    for (const entry of batch) {
      const [hashPart, path] = entry;
      if (!valid.has(path)) {
        gone.push(path);
        continue;
      }
      if (batch.length === 1) {
        const failures = (this.aloneFailures.get(hashPart) ?? 0) + 1;
        if (failures >= limit) {
          this.aloneFailures.delete(hashPart);
          givenUp = path;
          continue;
        }
        this.aloneFailures.set(hashPart, failures);
      }
      retry.push(entry);
    }
    const what = paths.length === 1 ? paths[0] : `${paths.length} paths`;
    const next = retry.length === 0 ? '' : retry.length === 1 ? '; retrying it later' : '; retrying in two halves later';
    this.options.log(`push of ${what} failed: ${messageOf(error)}${next}`);
    if (gone.length > 0)
      this.options.log(`not pushing ${gone.length === 1 ? gone[0] : `${gone.length} paths`}: no longer valid (garbage collected?)`);
    if (givenUp !== undefined) {
      this.totals.failed++;
      this.options.log(`gave up on ${givenUp} after ${limit} failed attempts`);
    }
    if (gone.length > 0) this.options.onSettled?.(gone, gone, 'no longer valid (garbage collected?)');
    if (givenUp !== undefined) this.options.onSettled?.([givenUp], [givenUp], messageOf(error));
    const half = Math.ceil(retry.length / 2);
    const halves = [retry.slice(0, half), retry.slice(half)].filter((part) => part.length > 0);
    this.retries.unshift(...halves);
    for (const [hashPart] of retry) this.retrying.add(hashPart);
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
