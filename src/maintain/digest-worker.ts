import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { NarParseError } from '../nix/nar/parser.js';
import { ChunkQueue } from '../util/chunk-queue.js';
import { ChunkSender } from '../util/chunk-sender.js';
import { decompressInto } from '../util/compression.js';
import { NarCheck } from './nar-digest.js';
import { CHUNK_SIZE, READ_SIZE, WINDOW, type FromWorker, type Half, type HalfToHalf, type ToWorker } from './digest-protocol.js';

// Runs in a worker thread: the two halves of digesting NAR files (digest-protocol.ts), as many
// jobs interleaved as the main thread hands out. sha256 and decompression are nearly all of
// verify's work; here they spread over the cores.

const parent = parentPort!;

interface Unpack {
  queue: ChunkQueue;
  sender: ChunkSender;
  port: MessagePort;
  aborted: boolean;
}

const unpacks = new Map<number, Unpack>();
const nars = new Map<number, MessagePort>();

function send(reply: FromWorker, transfer: ArrayBuffer[] = []): void {
  parent.postMessage(reply, transfer);
}

function failed(job: number, half: Half, error: unknown): FromWorker {
  if (error instanceof NarParseError) return { type: 'failed', job, half, message: error.message, offset: error.offset, what: error.what };
  return { type: 'failed', job, half, message: (error as Error).message };
}

/** Read buffers of jobs that are over, for the next. */
const idleReadBuffers: Buffer[] = [];

/** A file's bytes in one reused buffer: each chunk is a view to use before asking for the next. */
async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  const file = await open(path, 'r');
  const buffer = idleReadBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    idleReadBuffers.push(buffer);
    await file.close();
  }
}

/** The file's sha256 and size; its bytes unpacked and sent on to the `nar` half. */
function startUnpack(job: number, compression: string, fileHash: boolean, port: MessagePort, path: string | undefined): void {
  const queue = new ChunkQueue((buffer) => send({ type: 'ack', job, buffer }, [buffer]));
  const sender = new ChunkSender({
    send: (buffer, length) => port.postMessage({ type: 'chunk', buffer, length } satisfies HalfToHalf, [buffer]),
    chunkSize: CHUNK_SIZE,
    window: WINDOW,
  });
  const unpack: Unpack = { queue, sender, port, aborted: false };
  unpacks.set(job, unpack);
  port.on('message', (message: HalfToHalf) => {
    if (message.type === 'ack') sender.returned(message.buffer);
  });
  void (async () => {
    // An uncompressed file is the NAR itself: the other half's sha256 of the same bytes is its hash.
    const hash = fileHash && compression !== 'none' ? createHash('sha256') : undefined;
    let size = 0;
    const hashed = (async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of path === undefined ? queue : fileChunks(path)) {
        hash?.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    })();
    try {
      if (!(await decompressInto(hashed, compression, sender))) throw new Error(`compression '${compression}' is not supported here`);
      sender.flush();
      port.postMessage({ type: 'end' } satisfies HalfToHalf);
      send({ type: 'digest', job, half: 'unpack', sha256: hash?.digest(), size });
    } catch (error) {
      if (!unpack.aborted) send(failed(job, 'unpack', error));
      port.close();
    } finally {
      unpacks.delete(job);
    }
  })();
}

/** The NAR's sha256 and size, its structure checked as it streams, and its listing if asked. */
function startNar(job: number, listing: boolean, port: MessagePort): void {
  const check = new NarCheck(listing);
  let failure: unknown;
  nars.set(job, port);
  // The unpack half closes the channel when it fails; nothing more will come.
  port.once('close', () => nars.delete(job));
  port.on('message', (message: HalfToHalf) => {
    if (message.type === 'chunk') {
      if (failure === undefined) {
        try {
          check.write(Buffer.from(message.buffer, 0, message.length));
        } catch (error) {
          // Reported at once; the unpack half goes on, as its verdict on the file comes first.
          failure = error;
          send(failed(job, 'nar', error));
        }
      }
      port.postMessage({ type: 'ack', buffer: message.buffer } satisfies HalfToHalf, [message.buffer]);
    } else if (message.type === 'end') {
      nars.delete(job);
      port.close();
      if (failure !== undefined) return;
      try {
        send({ type: 'digest', job, half: 'nar', ...check.end() });
      } catch (error) {
        send(failed(job, 'nar', error));
      }
    }
  });
}

function abort(job: number): void {
  const unpack = unpacks.get(job);
  if (unpack) {
    unpack.aborted = true;
    const error = new Error('aborted');
    unpack.queue.fail(error);
    unpack.sender.fail(error);
  }
  const narPort = nars.get(job);
  if (narPort) {
    nars.delete(job);
    narPort.close();
  }
}

parent.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'unpack':
      return startUnpack(message.job, message.compression, message.fileHash, message.port, message.path);
    case 'nar':
      return startNar(message.job, message.listing, message.port);
    case 'chunk': {
      const unpack = unpacks.get(message.job);
      if (unpack) unpack.queue.push(message.buffer, message.length);
      // A job that is over still hands the memory back, so the main thread never waits for it.
      else send({ type: 'ack', job: message.job, buffer: message.buffer }, [message.buffer]);
      return;
    }
    case 'end':
      return unpacks.get(message.job)?.queue.end();
    case 'abort':
      return abort(message.job);
  }
});
