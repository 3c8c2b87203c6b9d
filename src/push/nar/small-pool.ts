// Worker threads that prepare small NARs in batches (see small-worker.ts). One message per
// batch, not per path: a push of ten thousand tiny paths would spend more on messages than on work.
import { Worker } from 'node:worker_threads';
import { UserError } from '../../errors.js';
import type { PathInfo } from '../../store/path-info.js';
import type { NarOptions, NarStage, PreparedNar } from './prepare.js';

/** What a worker is told once: how to compress, and where and how to stage (plain data: no callbacks). */
export type SmallNarOptions = Omit<NarOptions, 'onNarBytes' | 'observeNar'> & { stage: NarStage };

export interface SmallNarRequest {
  info: PathInfo;
}

export type SmallNarResult =
  | { kind: 'ready'; prepared: PreparedNar }
  | { kind: 'too-large' }
  | { kind: 'failed'; message: string; hint: string | undefined; user: boolean };

export interface SmallNarReply {
  id: number;
  results: SmallNarResult[];
}

/** A prepared small NAR, or undefined when it must be streamed after all. */
export type SmallNar = PreparedNar | undefined;

interface Waiting {
  info: PathInfo;
  resolve: (nar: SmallNar) => void;
  reject: (error: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  batches: Map<number, Waiting[]>;
}

/** Paths per message: large enough to amortise a message, small enough to keep every worker fed. */
const MAX_BATCH_PATHS = 64;
const MAX_BATCH_NAR_BYTES = 4 << 20;
/** Batches queued at each worker, so it never waits for the main thread between two. */
const BATCHES_PER_WORKER = 2;

export class SmallNarPool {
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Waiting[] = [];
  private flushScheduled = false;
  private nextId = 0;

  constructor(
    private readonly size: number,
    private readonly options: SmallNarOptions,
  ) {}

  /** Resolves once this path's NAR is ready in memory; paths asked for together go out in batches. */
  prepare(info: PathInfo): Promise<SmallNar> {
    return new Promise((resolve, reject) => {
      this.queue.push({ info, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(({ worker }) => worker.terminate()));
    this.workers.length = 0;
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const target = this.idlestWorker();
      if (!target) return;
      // Split what is queued evenly, so the last batches do not leave a core idle.
      const share = Math.ceil(this.queue.length / (this.size * BATCHES_PER_WORKER));
      const batch: Waiting[] = [];
      let narBytes = 0;
      while (this.queue.length > 0 && batch.length < Math.min(MAX_BATCH_PATHS, share) && narBytes < MAX_BATCH_NAR_BYTES) {
        const next = this.queue.shift()!;
        batch.push(next);
        narBytes += next.info.narSize;
      }
      const id = this.nextId++;
      target.batches.set(id, batch);
      target.worker.postMessage({ id, requests: batch.map(({ info }) => ({ info }) satisfies SmallNarRequest) });
    }
  }

  private idlestWorker(): PoolWorker | undefined {
    let best: PoolWorker | undefined;
    for (const candidate of this.workers) if (!best || candidate.batches.size < best.batches.size) best = candidate;
    if (best && best.batches.size === 0) return best;
    if (this.workers.length < this.size) return this.startWorker();
    return best && best.batches.size < BATCHES_PER_WORKER ? best : undefined;
  }

  private startWorker(): PoolWorker {
    const worker = new Worker(new URL('./small-worker.js', import.meta.url), {
      workerData: this.options,
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    const entry: PoolWorker = { worker, batches: new Map() };
    worker.on('message', (reply: SmallNarReply) => {
      const batch = entry.batches.get(reply.id);
      entry.batches.delete(reply.id);
      batch?.forEach((waiting, index) => settle(waiting, reply.results[index]));
      this.flush();
    });
    const failAll = (error: Error): void => {
      for (const batch of entry.batches.values()) for (const waiting of batch) waiting.reject(error);
      entry.batches.clear();
      this.workers.splice(this.workers.indexOf(entry), 1);
      this.flush();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => {
      if (entry.batches.size > 0) failAll(new Error(`a small-NAR worker exited (${code}) with paths in hand`));
    });
    this.workers.push(entry);
    return entry;
  }
}

function settle(waiting: Waiting, result: SmallNarResult | undefined): void {
  if (!result) return waiting.reject(new Error(`a small-NAR worker answered nothing for ${waiting.info.path}`));
  if (result.kind === 'ready') return waiting.resolve(result.prepared);
  if (result.kind === 'too-large') return waiting.resolve(undefined);
  waiting.reject(result.user ? new UserError(result.message, result.hint) : new Error(result.message));
}
