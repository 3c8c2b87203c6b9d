// A compressed NAR unpacked as a stream of chunks, read ahead by a few: for NARs too large to
// hold whole, and for compressions only a child process unpacks (xz, bzip2).
import { UserError } from '../../errors.js';
import type { NarInfo } from '../../nix/narinfo.js';
import { decompressInto } from '../../util/compression.js';

/** Unpacked chunks queued ahead of the reader: a few MiB at most. */
const QUEUED_CHUNKS = 4;
const ROOM_BYTES = 1 << 20;

/**
 * The unpacked NAR as chunks of memory no one reuses, read ahead by a few; the unpacking stops
 * when the reader does.
 */
export async function* unpacked(compressed: AsyncIterable<Buffer>, narInfo: NarInfo): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let finished = false;
  let failure: unknown;
  let stopped = false;
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  let current = Buffer.allocUnsafe(0);
  let offset = 0;
  let unpackedBytes = 0;
  const wake = (): void => {
    wakeReader?.();
    wakeReader = undefined;
  };
  const running = decompressInto(compressed, narInfo.compression, {
    room: async () => {
      while (queue.length >= QUEUED_CHUNKS && !stopped) await new Promise<void>((resolve) => (wakeWriter = resolve));
      if (stopped) throw new Error('stopped');
      if (offset >= current.length) {
        // Sized to what is left of the NAR (and a byte over, to see one larger than recorded):
        // a fresh MiB per tiny path would keep the garbage collector busy.
        current = Buffer.allocUnsafe(Math.max(1, Math.min(ROOM_BYTES, narInfo.narSize - unpackedBytes + 1)));
        offset = 0;
      }
      return current.subarray(offset);
    },
    commit: (count) => {
      if (count === 0) return;
      queue.push(current.subarray(offset, offset + count));
      offset += count;
      unpackedBytes += count;
      wake();
    },
  }).then(
    (readable) => {
      if (!readable) {
        failure = new UserError(
          `${narInfo.storePath}: its NAR is compressed with ${narInfo.compression}, which this client cannot unpack`,
          'copy it with nix copy, or ask for it to be stored with zstd, xz or bzip2',
        );
      }
      finished = true;
      wake();
    },
    (error: unknown) => {
      failure = error;
      finished = true;
      wake();
    },
  );
  try {
    for (;;) {
      if (queue.length > 0) {
        const chunk = queue.shift()!;
        wakeWriter?.();
        wakeWriter = undefined;
        yield chunk;
        continue;
      }
      if (finished) {
        if (failure !== undefined) throw failure;
        return;
      }
      await new Promise<void>((resolve) => (wakeReader = resolve));
    }
  } finally {
    stopped = true;
    wakeWriter?.();
    await running;
  }
}
