import { availableParallelism } from 'node:os';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { NarParseError } from '../nix/nar/parser.js';
import { ChunkSender } from '../util/chunk-sender.js';
import { Semaphore } from '../util/semaphore.js';
import { WorkerPool, type PoolWorker } from '../util/worker-pool.js';
import { CHUNK_SIZE, WINDOW, type FromWorker, type Half, type ToWorker } from './digest-protocol.js';
import type { DigestWants, NarDigest } from './nar-digest.js';

// The main thread's side of digest-worker.ts: worker threads that take a NAR file's FileHash,
// unpack it, and take the NAR's NarHash and check its structure, while the main thread only
// reads the file and hands it over.

export interface NarFileInfo extends DigestWants {
  compression: string;
  /** What the narinfo claims, only to spread work over the workers. */
  fileSize?: number | undefined;
  narSize: number;
  /** A file on this machine, which a worker reads itself (nothing is then written to the job). */
  path?: string | undefined;
}

interface JobHalf {
  job: number;
  /** About how many bytes this half has yet to digest. */
  remaining: () => number;
  fail(error: Error): void;
}

interface HalfDigest {
  sha256: Uint8Array | undefined;
  size: number;
  listing?: string | undefined;
}

interface Outcome {
  promise: Promise<HalfDigest>;
  resolve: (digest: HalfDigest) => void;
  reject: (error: Error) => void;
}

function outcome(): Outcome {
  let resolve!: Outcome['resolve'];
  let reject!: Outcome['reject'];
  const promise = new Promise<HalfDigest>((yes, no) => ((resolve = yes), (reject = no)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * One NAR file on its way through the workers: `write` its bytes as served (unless a worker reads
 * it itself), then `end`, or `abort`.
 */
export class NarDigestJob {
  private readonly sender: ChunkSender;
  private readonly results: Record<Half, Outcome> = { unpack: outcome(), nar: outcome() };
  private finished = false;

  constructor(
    private readonly id: number,
    private readonly unpacker: Worker,
    private readonly checker: Worker,
    private readonly readsItself: boolean,
    private readonly fileHash: boolean,
    private readonly release: () => void,
  ) {
    this.sender = new ChunkSender({
      send: (buffer, length) => this.post(unpacker, { type: 'chunk', job: id, buffer, length }, [buffer]),
      chunkSize: CHUNK_SIZE,
      window: WINDOW,
    });
  }

  get written(): number {
    return this.sender.written;
  }

  /** Copies `chunk` out; waits while the workers are behind. */
  write(chunk: Buffer): Promise<void> {
    return this.sender.write(chunk);
  }

  /**
   * The file is complete: both digests, or what is wrong. A file that cannot be unpacked is
   * reported as such before anything the NAR parser found in what came out of it.
   */
  async end(): Promise<NarDigest> {
    try {
      if (!this.readsItself) {
        this.sender.flush();
        this.post(this.unpacker, { type: 'end', job: this.id });
      }
      const file = await this.results.unpack.promise;
      const nar = await this.results.nar.promise;
      if (!nar.sha256) throw new Error('a digest worker sent no NarHash');
      this.finish();
      const fileHash = file.sha256 ?? (this.fileHash ? nar.sha256 : undefined);
      return { fileHash, fileSize: file.size, narHash: nar.sha256, narSize: nar.size, listing: nar.listing };
    } catch (error) {
      // A half may still wait for bytes that will not come.
      this.abort();
      throw error;
    }
  }

  abort(): void {
    if (this.finished) return;
    this.post(this.unpacker, { type: 'abort', job: this.id });
    if (this.checker !== this.unpacker) this.post(this.checker, { type: 'abort', job: this.id });
    this.finish();
  }

  receive(reply: FromWorker): void {
    if (reply.type === 'ack') {
      this.sender.returned(reply.buffer);
    } else if (reply.type === 'digest') {
      this.results[reply.half].resolve({ sha256: reply.sha256, size: reply.size, listing: reply.listing });
    } else {
      const error = reply.what !== undefined ? new NarParseError(reply.offset!, reply.what) : new Error(reply.message);
      this.results[reply.half].reject(error);
      // The file is still read to its end after a NAR error: whether it unpacks is decided first.
      if (reply.half === 'unpack') this.sender.fail(error);
    }
  }

  fail(error: Error): void {
    this.sender.fail(error);
    this.results.unpack.reject(error);
    this.results.nar.reject(error);
  }

  private post(worker: Worker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(message, transfer);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
  }
}

/**
 * Worker threads for NAR digests, started as needed up to one per core (at most 4). Each half of
 * a job goes to the worker with the least left to do, so one large NAR keeps two cores busy.
 * Idle workers are unref'd, so they never keep the process alive.
 */
class DigestPool {
  private readonly size = Math.max(1, Math.min(availableParallelism(), 4));
  private readonly pool = new WorkerPool<JobHalf, FromWorker>({
    script: new URL('./digest-worker.js', import.meta.url),
    size: this.size,
    onMessage: (_entry, reply) => this.jobs.get(reply.job)?.receive(reply),
    exited: (code) => new Error(`a digest worker exited (${code})`),
  });
  private readonly jobs = new Map<number, NarDigestJob>();
  /**
   * NARs in the workers at once: two per worker keep every core busy (and the last NAR's two
   * halves on two cores); more only interleave, each holding its buffers and zstd window.
   */
  private readonly slots = new Semaphore(this.size * 2);
  private nextId = 0;

  /** Starts every worker now, so their start-up overlaps what comes before the first NAR. */
  warm(): void {
    while (!this.pool.full) this.pool.start();
  }

  /** A NAR into the workers, once one of the slots is free. */
  async start(file: NarFileInfo): Promise<NarDigestJob> {
    await this.slots.acquire();
    try {
      return this.startInSlot(file);
    } catch (error) {
      // No job took the slot (a worker could not be started): it is free again.
      this.slots.release();
      throw error;
    }
  }

  private startInSlot(file: NarFileInfo): NarDigestJob {
    const id = this.nextId++;
    const fileSize = file.fileSize ?? file.narSize;
    // Rough costs in bytes hashed: unpacking (hashes the file if asked and) writes the NAR, the other half hashes the NAR.
    const unpackCost = (file.fileHash ? fileSize : fileSize / 4) + (file.compression === 'none' ? 0 : file.narSize / 2);
    const left = (): number => 1 - Math.min((this.jobs.get(id)?.written ?? 0) / Math.max(fileSize, 1), 1);
    const fail = (error: Error): void => this.jobs.get(id)?.fail(error);
    const unpackHalf: JobHalf = { job: id, remaining: () => unpackCost * left(), fail };
    const narHalf: JobHalf = { job: id, remaining: () => file.narSize * left(), fail };
    const unpacker = this.pool.pick(load);
    this.pool.hold(unpacker, unpackHalf);
    let checker: PoolWorker<JobHalf>;
    try {
      checker = this.pool.pick(load);
    } catch (error) {
      this.pool.release(unpacker, unpackHalf);
      throw error;
    }
    this.pool.hold(checker, narHalf);
    const job = new NarDigestJob(id, unpacker.worker, checker.worker, file.path !== undefined, file.fileHash, () => {
      this.slots.release();
      this.jobs.delete(id);
      this.pool.release(unpacker, unpackHalf);
      this.pool.release(checker, narHalf);
    });
    this.jobs.set(id, job);
    const channel = new MessageChannel();
    unpacker.worker.postMessage(
      {
        type: 'unpack',
        job: id,
        compression: file.compression,
        fileHash: file.fileHash,
        port: channel.port1,
        path: file.path,
      } satisfies ToWorker,
      [channel.port1],
    );
    checker.worker.postMessage({ type: 'nar', job: id, listing: file.listing, port: channel.port2 } satisfies ToWorker, [channel.port2]);
    return job;
  }
}

/** What a worker has left to do: its halves, and the bytes they have yet to digest. */
function load(entry: PoolWorker<JobHalf>): number {
  let total = entry.held.size;
  for (const half of entry.held) total += half.remaining();
  return total;
}

let pool: DigestPool | undefined;

export function narDigests(): DigestPool {
  pool ??= new DigestPool();
  return pool;
}
