import type { MessagePort } from 'node:worker_threads';

// What the main thread and the digest workers (digest-worker.ts) say to each other. A NAR file is
// digested in two halves, each on a worker: `unpack` takes the file's sha256 and unpacks it,
// handing the NAR over its own channel to `nar`, which takes the NAR's sha256 and parses it.

/** Bytes per message: few messages per gigabyte, little memory per stream in flight. */
export const CHUNK_SIZE = 256 << 10;
/** Chunks of one stream out at once. */
export const WINDOW = 4;
/** Bytes per read of a file the worker reads itself. */
export const READ_SIZE = 1 << 20;

export type ToWorker =
  /** With `path`, the worker reads the file itself; without, the main thread sends its chunks. */
  | { type: 'unpack'; job: number; compression: string; port: MessagePort; path?: string | undefined }
  | { type: 'nar'; job: number; port: MessagePort }
  | { type: 'chunk'; job: number; buffer: ArrayBuffer; length: number }
  | { type: 'end' | 'abort'; job: number };

export type Half = 'unpack' | 'nar';

export type FromWorker =
  | { type: 'ack'; job: number; buffer: ArrayBuffer }
  /** The unpack half of an uncompressed file sends no sha256: the nar half's is the same. */
  | { type: 'digest'; job: number; half: Half; sha256: Uint8Array | undefined; size: number }
  | { type: 'failed'; job: number; half: Half; message: string; offset?: number; what?: string };

/** Between the two halves of one job. */
export type HalfToHalf = { type: 'chunk'; buffer: ArrayBuffer; length: number } | { type: 'end' } | { type: 'ack'; buffer: ArrayBuffer };
