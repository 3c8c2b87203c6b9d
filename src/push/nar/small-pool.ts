// Worker threads that prepare small NARs in batches (see small-worker.ts). One message per
// batch, not per path: a push of ten thousand tiny paths would spend more on messages than on work.
import { UserError } from '../../errors.js';
import { WorkerPool, type PoolWorker } from '../../util/worker-pool.js';
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

/** One message's paths, held by the worker preparing them. */
interface Batch {
  id: number;
  waiting: Waiting[];
  fail(error: Error): void;
}

/** Paths per message: large enough to amortise a message, small enough to keep every worker fed. */
const MAX_BATCH_PATHS = 64;
const MAX_BATCH_NAR_BYTES = 4 << 20;
/** Batches queued at each worker, so it never waits for the main thread between two. */
const BATCHES_PER_WORKER = 2;

export class SmallNarPool {
  private readonly pool: WorkerPool<Batch, SmallNarReply>;
  private readonly batches = new Map<number, Batch>();
  private readonly queue: Waiting[] = [];
  private flushScheduled = false;
  private nextId = 0;

  constructor(
    private readonly size: number,
    options: SmallNarOptions,
  ) {
    this.pool = new WorkerPool({
      script: new URL('./small-worker.js', import.meta.url),
      workerOptions: { workerData: options, resourceLimits: { maxYoungGenerationSizeMb: 4 } },
      size,
      onMessage: (entry, reply) => this.receive(entry, reply),
      exited: (code) => new Error(`a small-NAR worker exited (${code}) with paths in hand`),
      onLost: () => this.flush(),
    });
  }

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

  close(): Promise<void> {
    return this.pool.close();
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const target = this.pool.pick();
      if (target.held.size >= BATCHES_PER_WORKER) return;
      // Split what is queued evenly, so the last batches do not leave a core idle.
      const share = Math.ceil(this.queue.length / (this.size * BATCHES_PER_WORKER));
      const waiting: Waiting[] = [];
      let narBytes = 0;
      while (this.queue.length > 0 && waiting.length < Math.min(MAX_BATCH_PATHS, share) && narBytes < MAX_BATCH_NAR_BYTES) {
        const next = this.queue.shift()!;
        waiting.push(next);
        narBytes += next.info.narSize;
      }
      const id = this.nextId++;
      const batch: Batch = {
        id,
        waiting,
        fail: (error) => {
          this.batches.delete(id);
          for (const each of waiting) each.reject(error);
        },
      };
      this.batches.set(id, batch);
      this.pool.hold(target, batch);
      target.worker.postMessage({ id, requests: waiting.map(({ info }) => ({ info }) satisfies SmallNarRequest) });
    }
  }

  private receive(entry: PoolWorker<Batch>, reply: SmallNarReply): void {
    const batch = this.batches.get(reply.id);
    if (batch) {
      this.batches.delete(reply.id);
      this.pool.release(entry, batch);
      batch.waiting.forEach((waiting, index) => settle(waiting, reply.results[index]));
    }
    this.flush();
  }
}

function settle(waiting: Waiting, result: SmallNarResult | undefined): void {
  if (!result) return waiting.reject(new Error(`a small-NAR worker answered nothing for ${waiting.info.path}`));
  if (result.kind === 'ready') return waiting.resolve(result.prepared);
  if (result.kind === 'too-large') return waiting.resolve(undefined);
  waiting.reject(result.user ? new UserError(result.message, result.hint) : new Error(result.message));
}
