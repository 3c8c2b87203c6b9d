import { Readable, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { request } from './undici-lean.js';

/** Our own upload timeouts; `code` makes them retryable, as a socket timeout is. */
export class UploadTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';

  constructor(message: string) {
    super(message);
    this.name = 'UploadTimeoutError';
  }
}

export interface UploadLimits {
  /** The server must keep taking bytes: no pause longer than this while the body is sent. */
  idleMs: number;
  /**
   * Once the whole body is handed to the socket, the answer's headers must come within this,
   * plus the time the bytes still in buffers need to drain at the speed the upload ran at.
   */
  headersMs: number;
}

/** What the API clients (cachix, attic) allow an upload: two minutes without progress, two for the answer. */
export const UPLOAD_LIMITS: UploadLimits = { idleMs: 120_000, headersMs: 120_000 };

export interface WatchedUpload {
  body: Readable;
  /** Aborted, with an UploadTimeoutError as reason, when a limit is passed. */
  signal: AbortSignal;
  /** Stops the timers: call once the request has been answered or has failed. */
  stop(): void;
}

/** Slices a Buffer body, so progress is seen as it is sent, not as one write. */
const SLICE_BYTES = 256 * 1024;

/**
 * What may still be in flight when the last byte is handed to the socket: the kernel's send
 * buffer (Linux autotunes it up to 4 MiB), a proxy's, the receiver's window. Generous on purpose.
 */
const BUFFERED_BYTES = 16 * 1024 * 1024;

/** Upload speed is measured over this recent window, once the buffers are full. */
const RATE_WINDOW_MS = 5000;

function* slicesOf(buffer: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < buffer.length; offset += SLICE_BYTES) yield buffer.subarray(offset, offset + SLICE_BYTES);
}

/**
 * undici's headersTimeout starts again with each write and runs on from the last one. But the
 * last write only hands bytes to the kernel: megabytes can still be buffered, and on a slow link
 * (under about 70 KB/s for 60 s) they take longer than the timeout to reach the server, so a
 * healthy upload would fail at its very end, on every retry. Uploads therefore run with undici's
 * timeout off and this watchdog instead: a server that stops taking bytes for idleMs is given
 * up on, and after the last byte it has headersMs plus the buffers' drain time at the measured
 * upload speed to answer. The caller sends content-length: the returned body is a stream.
 */
export function watchUpload(source: Readable | Buffer, limits: UploadLimits): WatchedUpload {
  const controller = new AbortController();
  let bytes = 0;
  let lastProgress = Date.now();
  /** (time, bytes so far) once per tick, over the last RATE_WINDOW_MS. */
  const samples: Array<{ at: number; bytes: number }> = [{ at: lastProgress, bytes: 0 }];
  let answerDeadline: number | undefined;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      lastProgress = Date.now();
      done(null, chunk);
    },
    flush(done) {
      const now = Date.now();
      const oldest = samples.find((sample) => now - sample.at <= RATE_WINDOW_MS) ?? samples[samples.length - 1]!;
      // Bytes per ms over the recent window; none measurable when the body went at once.
      const rate = now - oldest.at >= 500 ? (bytes - oldest.bytes) / (now - oldest.at) : undefined;
      const drainMs = rate ? Math.min(bytes, BUFFERED_BYTES) / rate : 0;
      answerDeadline = now + limits.headersMs + drainMs;
      done();
    },
  });
  const input = Buffer.isBuffer(source) ? Readable.from(slicesOf(source)) : source;
  input.on('error', (error) => meter.destroy(error));
  input.pipe(meter);
  const check = (): void => {
    const now = Date.now();
    samples.push({ at: now, bytes });
    while (samples.length > 1 && now - samples[1]!.at > RATE_WINDOW_MS) samples.shift();
    if (answerDeadline === undefined && now - lastProgress > limits.idleMs) {
      controller.abort(new UploadTimeoutError(`the server took no data for ${seconds(limits.idleMs)} while we were uploading`));
    } else if (answerDeadline !== undefined && now > answerDeadline) {
      // lastProgress is now the time the last byte was handed over.
      controller.abort(new UploadTimeoutError(`no answer within ${seconds(now - lastProgress)} after the upload was sent`));
    }
  };
  const timer = setInterval(check, Math.max(10, Math.min(1000, Math.floor(Math.min(limits.idleMs, limits.headersMs) / 4))));
  return {
    body: meter,
    signal: controller.signal,
    stop() {
      clearInterval(timer);
      // A body the server answered early (401, 413) is not read to its end: release its file.
      if (!input.readableEnded) input.destroy();
    },
  };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

export interface UploadRequest {
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body?: Readable | Buffer | string | undefined;
  dispatcher: Dispatcher;
}

/**
 * undici's request; with `limits`, a stream or Buffer body is timed by progress (watchUpload)
 * instead of by undici's headersTimeout, and a limit passed rejects with its UploadTimeoutError.
 */
export async function requestWatchingUpload(
  url: URL,
  options: UploadRequest,
  limits: UploadLimits | undefined,
): Promise<Dispatcher.ResponseData> {
  const { body } = options;
  const watched = limits && body !== undefined && typeof body !== 'string' ? watchUpload(body, limits) : undefined;
  try {
    return await request(url, { ...options, body: watched?.body ?? body, ...(watched && { signal: watched.signal, headersTimeout: 0 }) });
  } catch (error) {
    throw watched?.signal.aborted ? watched.signal.reason : error;
  } finally {
    // Also closes a file the server answered early (401, 413) without reading to its end.
    watched?.stop();
  }
}
