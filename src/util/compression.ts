import { pipeline } from 'node:stream/promises';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { UserError } from '../errors.js';
import { childStream, type ChildStream } from './child-stream.js';
import { zstdBinding } from './zstd-lazy.js';

export type CompressionMethod = 'zstd' | 'xz' | 'none';

/** The narinfo `Compression:` value and the NAR file extension for each method, as Nix names them. */
export const COMPRESSION_EXTENSION: Record<CompressionMethod, string> = { zstd: '.zst', xz: '.xz', none: '' };

/** zstd's own default level, which is also what `nix copy ?compression=zstd` uses. */
export const DEFAULT_ZSTD_LEVEL = 3;
export const DEFAULT_XZ_LEVEL = 6;

const XZ_HINT = 'install xz (apt-get install xz-utils) or use -m zstd';

export function checkCompressionLevel(method: CompressionMethod, level: number | undefined): number | undefined {
  if (level === undefined || method === 'none') return level;
  const max = method === 'zstd' ? 19 : 9;
  const min = method === 'zstd' ? 1 : 0;
  if (level < min || level > max) {
    throw new UserError(`compression level ${level} is out of range for ${method}`, `use -l between ${min} and ${max}`);
  }
  return level;
}

/** xz as a stream stage: Nix's xz is a library we cannot load from Node, so the binary runs. */
export function createXzCompressStream(level: number | undefined): ChildStream {
  return childStream('xz', ['--compress', '--stdout', `-${level ?? DEFAULT_XZ_LEVEL}`, '-T0'], XZ_HINT);
}

/**
 * cachix's `-l` (OptionsParser.hs): 0 to 16 for either method, default 2. xz itself stops at 9,
 * which cachix's help text also says.
 */
export const CACHIX_DEFAULT_LEVEL = 2;

export function checkCachixCompressionLevel(method: CompressionMethod, level: number | undefined): number | undefined {
  if (method === 'none') return level;
  const max = method === 'xz' ? 9 : 16;
  const chosen = level ?? CACHIX_DEFAULT_LEVEL;
  if (chosen < 0 || chosen > max) {
    throw new UserError(`compression level ${chosen} is out of range for ${method} on a cachix cache`, `use -l between 0 and ${max}`);
  }
  return chosen;
}

/**
 * Where unpacked bytes go: into room the sink lends, so a decompressor can write in place
 * (zstd does) instead of into a buffer of its own that is then copied.
 */
export interface ByteSink {
  /** Free space to write into (at least one byte), valid until the next `commit`. */
  room(): Promise<Buffer>;
  /** The first `count` bytes of the last room are filled. */
  commit(count: number): void;
}

/**
 * Unpacks a cache's file as it streams in, by the narinfo's Compression (a missing one means
 * bzip2, as Nix reads it), into `sink`. False, reading nothing, for a method we cannot read.
 * Each chunk of `source` is used up before the next is asked for, so it may be a view of memory
 * the source reuses.
 */
export async function decompressInto(source: AsyncIterable<Buffer>, compression: string, sink: ByteSink): Promise<boolean> {
  switch (compression) {
    case 'none':
      for await (const chunk of source) await copyInto(chunk, sink);
      return true;
    case 'zstd':
      await zstdInto(source, sink);
      return true;
    case 'xz':
      await childInto(source, 'xz', ['-d', '-c'], XZ_HINT, sink);
      return true;
    case 'bzip2':
      await childInto(source, 'bzip2', ['-d', '-c'], 'install bzip2 (apt-get install bzip2)', sink);
      return true;
    default:
      return false;
  }
}

async function copyInto(chunk: Buffer, sink: ByteSink): Promise<void> {
  for (let offset = 0; offset < chunk.length;) {
    const room = await sink.room();
    const copied = chunk.copy(room, 0, offset);
    sink.commit(copied);
    offset += copied;
  }
}

/** Decompression contexts that finished a stream cleanly, each holding its window for the next. */
const idleDecompressors: ZstdBinding.DCtx[] = [];

async function zstdInto(source: AsyncIterable<Buffer>, sink: ByteSink): Promise<void> {
  const context = idleDecompressors.pop() ?? new (zstdBinding().DCtx)();
  let inFrame = false;
  for await (const chunk of source) {
    let input = chunk;
    // ZSTD_decompressStream's contract: call again while input is left or the output came back
    // full (zstd may hold more); a return of 0 means a frame just ended.
    for (;;) {
      const room = await sink.room();
      const [next, produced, consumed] = context.decompressStream(room, input);
      input = input.subarray(consumed);
      sink.commit(produced);
      if (input.length === 0 && (produced < room.length || next === 0)) {
        inFrame = next !== 0;
        break;
      }
    }
  }
  if (inFrame) throw new Error('the zstd data ends in the middle of a frame (truncated)');
  // Only now: a context left mid-frame by an error or an early stop is not reused.
  idleDecompressors.push(context);
}

async function childInto(
  source: AsyncIterable<Buffer>,
  program: string,
  args: string[],
  installHint: string,
  sink: ByteSink,
): Promise<void> {
  const child = childStream(program, args, installHint);
  // The child's stdin may still hold a chunk when the next is asked for: it gets copies.
  const copies = (async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of source) yield Buffer.from(chunk);
  })();
  const feeding = pipeline(copies, child.stream);
  feeding.catch(() => undefined);
  try {
    for await (const chunk of child.stream) await copyInto(chunk as Buffer, sink);
    await feeding;
    await child.done;
  } finally {
    child.stream.destroy();
  }
}

const wholeContexts = new Map<number, ZstdBinding.CCtx>();

/**
 * Compresses a small NAR in one go, without threads: cheaper than a stream for tiny paths. It is
 * fed as a stream whose size zstd is not told (all input, then the end), as Nix's own compressor
 * does: told that an input is tiny, zstd picks parameters that compress it a few bytes worse than
 * Nix's output, and every narinfo's FileSize would show it.
 */
export function compressWhole(method: CompressionMethod, level: number | undefined, input: Buffer): Buffer | undefined {
  if (method === 'none') return input;
  if (method !== 'zstd') return undefined;
  const zstd = zstdBinding();
  const compressionLevel = level ?? DEFAULT_ZSTD_LEVEL;
  // One context per level, reused: making a zstd context per tiny path costs more than compressing it.
  let context = wholeContexts.get(compressionLevel);
  if (!context) {
    context = new zstd.CCtx();
    context.setParameter(zstd.CParameter.compressionLevel, compressionLevel);
    wholeContexts.set(compressionLevel, context);
  }
  const output = Buffer.allocUnsafe(zstd.compressBound(input.length) + 64);
  let produced = 0;
  let rest = input;
  while (rest.length > 0) {
    const [, written, consumed] = context.compressStream2(output.subarray(produced), rest, zstd.EndDirective.continue);
    produced += written;
    rest = rest.subarray(consumed);
  }
  for (;;) {
    const [remaining, written] = context.compressStream2(output.subarray(produced), rest, zstd.EndDirective.end);
    produced += written;
    if (remaining === 0) break;
  }
  // Its own copy, sized to fit: the output buffer was sized for the worst case.
  return Buffer.from(output.subarray(0, produced));
}
