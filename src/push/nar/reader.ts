import { createHash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { takeEarlyDump } from '../../store/early-dump.js';
import { nixDumpIsCheaper, nixStoreDump } from '../../store/nix-store-dump.js';
import { WorkerPool, type PoolWorker } from '../../util/worker-pool.js';

/** `ack` says a chunk was used; with `buffer`, its memory comes back to be filled again. */
export type ReaderRequest = { type: 'read'; path: string } | { type: 'ack'; buffer?: ArrayBuffer | undefined };
export type ReaderReply =
  | { type: 'chunk'; buffer: ArrayBuffer; offset: number; length: number }
  | { type: 'end'; digest: Uint8Array; size: number }
  | { type: 'error'; message: string };

/** Who walks the tree: nix-store in a process of its own (many small entries), or our walk on a reader thread. */
export type NarWalk = 'nix-store' | 'reader-thread';

export interface NarReadResult {
  narDigest: Buffer;
  narSize: number;
}

/** One NAR being read: what its worker has sent, and whether the worker was lost. */
class Reading {
  readonly queue: ReaderReply[] = [];
  failure: Error | undefined;
  private notify: (() => void) | undefined;

  receive(reply: ReaderReply): void {
    this.queue.push(reply);
    this.wake();
  }

  fail(error: Error): void {
    this.failure = error;
    this.wake();
  }

  /** Resolves at the next reply or failure (asked for only while there is neither). */
  arrival(): Promise<void> {
    return new Promise<void>((resolve) => (this.notify = resolve));
  }

  private wake(): void {
    const notify = this.notify;
    this.notify = undefined;
    notify?.();
  }
}

/**
 * A small pool of worker threads that each dump and hash one NAR at a time. Idle workers are
 * unref'd, so they never keep the process alive. A tree of many small entries is read from
 * `nix-store --dump` instead, and hashed here: nix-store does the walk on a core of its own, and
 * no worker has to start first; the path a push names may have been dumping since the process
 * started (store/early-dump.ts).
 */
class NarReaderPool {
  private readonly pool = new WorkerPool<Reading, ReaderReply>({
    script: new URL('./reader-worker.js', import.meta.url),
    size: Infinity,
    onMessage: (entry, reply) => this.reading.get(entry)?.receive(reply),
    exited: (code) => new Error(`a NAR reader thread exited (${code}) midway`),
  });
  /** Each lent worker's one NAR. */
  private readonly reading = new Map<PoolWorker<Reading>, Reading>();
  private readonly lent = new WeakMap<Buffer, Worker>();

  /** Hands a chunk from a recycling read back to its reader; it is also the reader's credit. */
  giveBack(chunk: Buffer): void {
    const worker = this.lent.get(chunk);
    if (!worker) return;
    this.lent.delete(chunk);
    const buffer = chunk.buffer as ArrayBuffer;
    worker.postMessage({ type: 'ack', buffer } satisfies ReaderRequest, [buffer]);
  }

  /**
   * Yields the NAR of `path` (whose size Nix recorded as `narSize`) in chunks; the generator's
   * return value is its sha256 and size.
   * With `recycle`, a chunk's memory goes back to the reader once the caller calls
   * `giveBack(chunk)`, and the caller must not touch it after that. `toldWalk` hears, before the
   * first chunk, which walk reads the tree.
   */
  async *read(path: string, narSize: number, recycle = false, toldWalk?: (walk: NarWalk) => void): AsyncGenerator<Buffer, NarReadResult> {
    const started = await takeEarlyDump(path, narSize);
    const fromNix = started ?? (nixDumpIsCheaper(path, narSize) ? nixStoreDump(path) : undefined);
    toldWalk?.(fromNix ? 'nix-store' : 'reader-thread');
    if (fromNix) return yield* hashed(fromNix);
    const entry = this.pool.pick();
    const { worker } = entry;
    const reading = new Reading();
    this.reading.set(entry, reading);
    this.pool.hold(entry, reading);
    worker.postMessage({ type: 'read', path } satisfies ReaderRequest);
    let finished = false;
    try {
      for (;;) {
        while (reading.queue.length === 0 && !reading.failure) await reading.arrival();
        if (reading.failure) throw reading.failure;
        const reply = reading.queue.shift()!;
        if (reply.type === 'error') throw new Error(reply.message);
        if (reply.type === 'end') {
          finished = true;
          return { narDigest: Buffer.from(reply.digest), narSize: reply.size };
        }
        const chunk = Buffer.from(reply.buffer, reply.offset, reply.length);
        if (recycle) {
          this.lent.set(chunk, worker);
        } else {
          worker.postMessage({ type: 'ack' } satisfies ReaderRequest);
        }
        yield chunk;
      }
    } finally {
      this.reading.delete(entry);
      // A reader abandoned midway or failed may still be dumping: that worker is not reused.
      if (finished) this.pool.release(entry, reading);
      else void this.pool.discard(entry);
    }
  }
}

async function* hashed(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer, NarReadResult> {
  const hash = createHash('sha256');
  let narSize = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    narSize += chunk.length;
    yield chunk;
  }
  return { narDigest: hash.digest(), narSize };
}

let pool: NarReaderPool | undefined;

export function narReaders(): NarReaderPool {
  pool ??= new NarReaderPool();
  return pool;
}
