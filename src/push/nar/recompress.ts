// A NAR compressed again on its way between caches (copy -m, or a destination that takes
// another method): chunks of the unpacked NAR in, compressed chunks out.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createXzCompressStream, DEFAULT_ZSTD_LEVEL, type CompressionMethod } from '../../util/compression.js';
import { zstdBinding } from '../../util/zstd-lazy.js';

const OUTPUT_BYTES = 1 << 20;

export interface Recompression {
  method: CompressionMethod;
  level?: number | undefined;
}

/** Compresses a stream of NAR chunks; each chunk yielded is the caller's to keep only until the next. */
export async function* compressed(nar: AsyncIterable<Buffer>, recompression: Recompression): AsyncGenerator<Buffer> {
  if (recompression.method === 'none') {
    yield* nar;
    return;
  }
  if (recompression.method === 'xz') {
    const xz = createXzCompressStream(recompression.level);
    const chunks: Buffer[] = [];
    let release: (() => void) | undefined;
    let done = false;
    const collect = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        release?.();
        callback();
      },
    });
    const piping = pipeline(Readable.from(nar), xz.stream, collect).then(() => xz.done);
    piping.then(
      () => ((done = true), release?.()),
      () => ((done = true), release?.()),
    );
    for (;;) {
      if (chunks.length > 0) {
        yield chunks.shift()!;
        continue;
      }
      if (done) break;
      await new Promise<void>((resolve) => (release = resolve));
      release = undefined;
    }
    await piping;
    return;
  }
  const zstd = zstdBinding();
  const context = new zstd.CCtx();
  context.setParameter(zstd.CParameter.compressionLevel, recompression.level ?? DEFAULT_ZSTD_LEVEL);
  const output = Buffer.allocUnsafe(OUTPUT_BYTES);
  const step = function* (input: Buffer, end: number): Generator<Buffer> {
    let rest = input;
    for (;;) {
      const [remaining, produced, consumed] = context.compressStream2(output, rest, end);
      if (produced > 0) yield output.subarray(0, produced);
      rest = rest.subarray(consumed);
      if (rest.length === 0 && (end === zstd.EndDirective.continue || remaining === 0)) return;
    }
  };
  for await (const chunk of nar) yield* step(chunk, zstd.EndDirective.continue);
  yield* step(Buffer.alloc(0), zstd.EndDirective.end);
}
