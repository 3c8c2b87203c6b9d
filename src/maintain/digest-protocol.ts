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
  /** `fileHash`: take the file's sha256 (an uncompressed file's is the NAR's, taken anyway). */
  | { type: 'unpack'; job: number; compression: string; fileHash: boolean; port: MessagePort; path?: string | undefined }
  /** `listing`: build the NAR's `.ls` JSON from the same parse. */
  | { type: 'nar'; job: number; listing: boolean; port: MessagePort }
  | { type: 'chunk'; job: number; buffer: ArrayBuffer; length: number }
  | { type: 'end' | 'abort'; job: number };

export type Half = 'unpack' | 'nar';

export type FromWorker =
  | { type: 'ack'; job: number; buffer: ArrayBuffer }
  /** The unpack half sends no sha256 for an uncompressed file (the nar half's is the same) or when not asked. */
  | { type: 'digest'; job: number; half: Half; sha256: Uint8Array | undefined; size: number; listing?: string | undefined }
  | { type: 'failed'; job: number; half: Half; message: string; offset?: number; what?: string };

/** Between the two halves of one job. */
export type HalfToHalf = { type: 'chunk'; buffer: ArrayBuffer; length: number } | { type: 'end' } | { type: 'ack'; buffer: ArrayBuffer };
