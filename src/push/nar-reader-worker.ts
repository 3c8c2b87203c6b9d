import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { dumpNar } from '../nix/nar/dump.js';
import type { ReaderReply, ReaderRequest } from './nar-reader.js';

/**
 * Runs in a worker thread: dumps one store path to NAR and hashes it, so reading the tree and
 * sha256 of the NAR overlap with compression and writing on the main thread. Chunks are
 * transferred, not copied, and at most WINDOW of them are unacknowledged at once.
 */
const WINDOW = 8;
const port = parentPort!;
let credits = WINDOW;
let wake: (() => void) | undefined;

function send(reply: ReaderReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
}

async function read(path: string): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  credits = WINDOW;
  try {
    for await (const chunk of dumpNar(path)) {
      hash.update(chunk);
      size += chunk.length;
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      // Buffers from Node's shared pool must be copied; our own chunks own their memory.
      const owned = chunk.buffer.byteLength > Buffer.poolSize / 2 ? chunk : Buffer.from(chunk);
      send({ type: 'chunk', buffer: owned.buffer as ArrayBuffer, offset: owned.byteOffset, length: owned.length }, [owned.buffer as ArrayBuffer]);
    }
    send({ type: 'end', digest: hash.digest(), size });
  } catch (error) {
    send({ type: 'error', message: (error as Error).message });
  }
}

port.on('message', (request: ReaderRequest) => {
  if (request.type === 'ack') {
    credits++;
    wake?.();
    wake = undefined;
  } else {
    void read(request.path);
  }
});
