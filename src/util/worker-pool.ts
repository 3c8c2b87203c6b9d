import { Worker, type WorkerOptions } from 'node:worker_threads';

// What every worker pool of ours shares, whatever its messages say: workers started as needed up
// to a size, each ref'd exactly while it holds work (an idle pool never keeps the process alive),
// the least loaded picked, and everything a worker held failed when it errors or exits. What a
// worker is told, and when, stays with each pool (batches, a streamed NAR, two halves of a job).

/** Something a worker holds: told once if the worker is lost with it in hand. */
export interface HeldWork {
  fail(error: Error): void;
}

export interface PoolWorker<Work extends HeldWork> {
  readonly worker: Worker;
  /** What it holds now; it is ref'd exactly while this is not empty. */
  readonly held: Set<Work>;
}

export interface WorkerPoolOptions<Work extends HeldWork, Message> {
  script: URL;
  workerOptions?: WorkerOptions | undefined;
  /** Workers at most; `Infinity` for one per piece of work. */
  size: number;
  onMessage: (entry: PoolWorker<Work>, message: Message) => void;
  /** The error what a worker held fails with when it exits. */
  exited: (code: number) => Error;
  /** After a lost worker's work has failed (a pool with a queue hands it to the others). */
  onLost?: (() => void) | undefined;
}

export class WorkerPool<Work extends HeldWork, Message> {
  readonly workers: PoolWorker<Work>[] = [];

  constructor(private readonly options: WorkerPoolOptions<Work, Message>) {}

  get full(): boolean {
    return this.workers.length >= this.options.size;
  }

  /** The worker with the least `load` (by default, the fewest pieces held); undefined before the first. */
  leastLoaded(load: (entry: PoolWorker<Work>) => number = heldCount): PoolWorker<Work> | undefined {
    let best: PoolWorker<Work> | undefined;
    let bestLoad = Infinity;
    for (const candidate of this.workers) {
      const candidateLoad = load(candidate);
      if (candidateLoad < bestLoad) [best, bestLoad] = [candidate, candidateLoad];
    }
    return best;
  }

  /** The least loaded worker if it holds nothing or the pool is full; otherwise a new one. */
  pick(load?: (entry: PoolWorker<Work>) => number): PoolWorker<Work> {
    const best = this.leastLoaded(load);
    if (best && (best.held.size === 0 || this.full)) return best;
    return this.start();
  }

  /** A new worker, unref'd until it holds something. */
  start(): PoolWorker<Work> {
    const worker = new Worker(this.options.script, this.options.workerOptions);
    const entry: PoolWorker<Work> = { worker, held: new Set() };
    worker.on('message', (message: Message) => this.options.onMessage(entry, message));
    worker.on('error', (error) => this.lose(entry, error));
    worker.on('exit', (code) => this.lose(entry, this.options.exited(code)));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    this.workers.push(entry);
    return entry;
  }

  hold(entry: PoolWorker<Work>, work: Work): void {
    if (entry.held.size === 0) entry.worker.ref();
    entry.held.add(work);
  }

  release(entry: PoolWorker<Work>, work: Work): void {
    entry.held.delete(work);
    if (entry.held.size === 0) entry.worker.unref();
  }

  /** Takes a worker out of the pool and stops it (one left mid-work, which cannot be reused). */
  discard(entry: PoolWorker<Work>): Promise<number> {
    this.remove(entry);
    entry.held.clear();
    return entry.worker.terminate();
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }

  private lose(entry: PoolWorker<Work>, error: Error): void {
    // A worker already taken out (closed, discarded, or its 'exit' after its 'error') holds nothing.
    if (!this.remove(entry) && entry.held.size === 0) return;
    const held = [...entry.held];
    entry.held.clear();
    for (const work of held) work.fail(error);
    this.options.onLost?.();
  }

  private remove(entry: PoolWorker<Work>): boolean {
    const index = this.workers.indexOf(entry);
    if (index < 0) return false;
    this.workers.splice(index, 1);
    return true;
  }
}

function heldCount(entry: PoolWorker<HeldWork>): number {
  return entry.held.size;
}
