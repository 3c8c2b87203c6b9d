import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { dumpNar } from '../../store/nar-dump.js';
import { takeEarlyDump } from '../../store/early-dump.js';
import type { PathInfo } from '../../store/path-info.js';
import { compressWhole, createXzCompressStream, DEFAULT_ZSTD_LEVEL, type CompressionMethod } from '../../util/compression.js';
import { narReaders, type NarReadResult, type NarWalk } from './reader.js';
import { zstdBinding } from '../../util/zstd-lazy.js';
import { NarLister, type NarListing } from './listing.js';
import { spoolFileMode } from './spool-mode.js';

/** What one pass over a store path produced: the NAR's hash and size, the spooled file's. */
export interface Spooled {
  narDigest: Buffer;
  narSize: number;
  fileDigest: Buffer;
  fileSize: number;
  /** The NAR's listing and debug-info members, when asked for (`listing`). */
  listing?: NarListing | undefined;
}

export interface SpoolOptions {
  compression: CompressionMethod;
  compressionLevel?: number | undefined;
  /** zstd worker threads for one streamed NAR. */
  zstdWorkers: number;
  /** Told of each chunk of a streamed NAR as it is read, for progress on a terminal. */
  onNarBytes?: ((bytes: number) => void) | undefined;
  /**
   * Sees every byte of the NAR in order, before compression and before the NarHash check: the
   * seam where work that needs the NAR's entries plugs in (a `.ls` listing or a build-log scan
   * feeding a NarParser) without a second dump. The chunk is lent: use or copy it before returning.
   */
  observeNar?: ((chunk: Buffer) => void) | undefined;
  /** Also list the NAR (`.ls`, `debuginfo/`) from the same bytes, as they go by. */
  listing?: boolean | undefined;
}

/** Below this, a NAR is built and compressed in memory in one call: no stream, no threads. */
export const SMALL_NAR_BYTES = 1 << 20;

/** A small NAR built, hashed and compressed in memory, not yet written anywhere. */
export interface CompressedInMemory {
  narDigest: Buffer;
  narSize: number;
  compressed: Buffer;
  listing?: NarListing | undefined;
}

/**
 * A small NAR is built, hashed and compressed in memory in one call each: no stream, no threads.
 * Returns undefined when the path turns out larger than Nix recorded (it is then streamed).
 */
export async function compressSmall(info: PathInfo, options: SpoolOptions): Promise<CompressedInMemory | undefined> {
  const narHasher = createHash('sha256');
  const chunks: Buffer[] = [];
  let narSize = 0;
  // One chunk sized to the NAR: a fresh 1 MiB chunk per tiny path would keep the GC busy. The
  // path a push names may have been dumping since the process started (store/early-dump.ts).
  const early = await takeEarlyDump(info.path, info.narSize);
  for await (const chunk of early ?? dumpNar(info.path, { chunkSize: Math.max(4096, info.narSize) })) {
    narHasher.update(chunk);
    narSize += chunk.length;
    chunks.push(chunk);
    if (narSize > SMALL_NAR_BYTES * 2) return undefined;
  }
  const nar = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const compressed = compressWhole(options.compression, options.compressionLevel, nar);
  if (!compressed) return undefined;
  // Told only now: a NAR larger than recorded is streamed afresh, and the observer must see it once.
  if (options.observeNar) for (const chunk of chunks) options.observeNar(chunk);
  let listing: NarListing | undefined;
  if (options.listing) {
    const lister = new NarLister();
    lister.write(nar);
    listing = lister.end();
  }
  return { narDigest: narHasher.digest(), narSize, compressed, listing };
}

export function spooledFromMemory(small: CompressedInMemory): Spooled {
  const { narDigest, narSize, compressed, listing } = small;
  return { narDigest, narSize, fileDigest: createHash('sha256').update(compressed).digest(), fileSize: compressed.length, listing };
}

/** A large NAR is dumped and hashed on a worker thread while this thread compresses and writes. */
export async function spoolStreamed(info: PathInfo, options: SpoolOptions, localPath: string): Promise<Spooled> {
  return options.compression === 'xz' ? spoolThroughStream(info, options, localPath) : spoolDirect(info, options, localPath);
}

/**
 * zstd and no compression: each chunk from the reader goes through zstd's streaming API (zstd's
 * own worker threads compress, or this thread for a tree nix-store walks) into one reused output buffer that is hashed and
 * written at once, then the chunk goes back to the reader. No stream objects, no per-chunk
 * garbage: a gigabyte NAR cycles through a few MiB.
 */
async function spoolDirect(info: PathInfo, options: SpoolOptions, localPath: string): Promise<Spooled> {
  const readers = narReaders();
  const zstd = options.compression === 'zstd' ? zstdBinding() : undefined;
  let context: ZstdBinding.CCtx | undefined;
  if (zstd) {
    context = new zstd.CCtx();
    context.setParameter(zstd.CParameter.compressionLevel, options.compressionLevel ?? DEFAULT_ZSTD_LEVEL);
  }
  // A tree nix-store walks (many small entries) arrives at tens of MB a second: one thread
  // compresses that as it comes, and gives the bytes Nix's own compressor gives, where zstd's
  // worker jobs wait for 8 MiB or the end and came out up to a fifth larger on a folder of empty
  // files. A NAR we read ourselves comes faster than one thread compresses it: zstd's threads.
  const chooseThreads = (walk: NarWalk): void =>
    context?.setParameter(zstd!.CParameter.nbWorkers, walk === 'nix-store' ? 0 : options.zstdWorkers);
  const reading = readers.read(info.path, info.narSize, true, chooseThreads);
  const fileHasher = createHash('sha256');
  let fileSize = 0;
  const fd = openSync(localPath, 'w', spoolFileMode(dirname(localPath)));
  const emit = (bytes: Buffer): void => {
    fileHasher.update(bytes);
    fileSize += bytes.length;
    for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written, bytes.length - written);
  };
  const lister = options.listing ? new NarLister() : undefined;
  const output = Buffer.allocUnsafe(1 << 20);
  const compress = (input: Buffer, end: ZstdBinding.EndDirective): void => {
    let rest = input;
    for (;;) {
      const [remaining, produced, consumed] = context!.compressStream2(output, rest, end);
      if (produced > 0) emit(output.subarray(0, produced));
      rest = rest.subarray(consumed);
      if (rest.length === 0 && (end === zstd!.EndDirective.continue || remaining === 0)) return;
    }
  };
  try {
    let result: NarReadResult;
    for (;;) {
      const next = await reading.next();
      if (next.done) {
        result = next.value;
        break;
      }
      options.onNarBytes?.(next.value.length);
      options.observeNar?.(next.value);
      lister?.write(next.value);
      if (context) compress(next.value, zstd!.EndDirective.continue);
      else emit(next.value);
      readers.giveBack(next.value);
    }
    if (context) compress(Buffer.alloc(0), zstd!.EndDirective.end);
    return { ...result, fileDigest: fileHasher.digest(), fileSize, listing: lister?.end() };
  } finally {
    closeSync(fd);
    await reading.return?.(undefined as never);
  }
}

/** xz runs as a child process: a stream pipeline carries the bytes to it and back. */
async function spoolThroughStream(info: PathInfo, options: SpoolOptions, localPath: string): Promise<Spooled> {
  const reading = narReaders().read(info.path, info.narSize);
  const lister = options.listing ? new NarLister() : undefined;
  let result: NarReadResult | undefined;
  const source = Readable.from(
    (async function* () {
      for (;;) {
        const next = await reading.next();
        if (next.done) {
          result = next.value;
          return;
        }
        options.onNarBytes?.(next.value.length);
        options.observeNar?.(next.value);
        lister?.write(next.value);
        yield next.value;
      }
    })(),
    { objectMode: false, highWaterMark: 1 << 20 },
  );
  const fileHasher = createHash('sha256');
  let fileSize = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      fileHasher.update(chunk);
      fileSize += chunk.length;
      done(null, chunk);
    },
  });
  const xz = createXzCompressStream(options.compressionLevel);
  await pipeline(
    source,
    xz.stream,
    hashing,
    createWriteStream(localPath, { highWaterMark: 1 << 20, mode: spoolFileMode(dirname(localPath)) }),
  );
  await xz.done;
  if (!result) throw new Error(`reading ${info.path} ended without a result`);
  return { ...result, fileDigest: fileHasher.digest(), fileSize, listing: lister?.end() };
}
