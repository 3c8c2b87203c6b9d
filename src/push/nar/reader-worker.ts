import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { DEFAULT_CHUNK_SIZE, dumpNar } from '../../store/nar-dump.js';
import type { ReaderReply, ReaderRequest } from './reader.js';

/**
 * Runs in a worker thread: dumps one store path to NAR and hashes it, so reading the tree and
 * sha256 of the NAR overlap with compression and writing on the main thread. Chunks are
 * transferred, not copied; at most WINDOW are out at once, and the main thread hands each one
 * back when it is done, so a gigabyte NAR cycles through a few MiB instead of feeding the GC.
 */
const WINDOW = 8;
const port = parentPort!;
let credits = WINDOW;
let wake: (() => void) | undefined;
const free: ArrayBuffer[] = [];

function allocate(size: number): Buffer {
  const recycled = free.pop();
  if (recycled && recycled.byteLength >= size) return Buffer.from(recycled, 0, size);
  // Always a whole chunk of its own, so it can be recycled for any later size.
  return Buffer.from(Buffer.allocUnsafeSlow(Math.max(size, DEFAULT_CHUNK_SIZE)).buffer, 0, size);
}

function send(reply: ReaderReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
}

async function read(path: string): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  credits = WINDOW;
  try {
    for await (const chunk of dumpNar(path, { allocate })) {
      hash.update(chunk);
      size += chunk.length;
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      // Only memory this chunk owns may be transferred; anything else is copied.
      const owned = chunk.buffer.byteLength >= DEFAULT_CHUNK_SIZE ? chunk : Buffer.from(chunk);
      send({ type: 'chunk', buffer: owned.buffer as ArrayBuffer, offset: owned.byteOffset, length: owned.length }, [
        owned.buffer as ArrayBuffer,
      ]);
    }
    send({ type: 'end', digest: hash.digest(), size });
  } catch (error) {
    send({ type: 'error', message: (error as Error).message });
  }
}

port.on('message', (request: ReaderRequest) => {
  if (request.type === 'ack') {
    if (request.buffer && free.length < WINDOW * 2) free.push(request.buffer);
    credits++;
    wake?.();
    wake = undefined;
  } else {
    void read(request.path);
  }
});
