import { PassThrough } from 'node:stream';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { UserError } from '../errors.js';
import { childStream, type ChildStream } from './child-stream.js';
import { zstdBinding, zstdNapi } from './zstd-lazy.js';

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
 * A decompressor for a narinfo's Compression (a missing one means bzip2, as Nix reads it);
 * undefined for a method we cannot read.
 */
export function createDecompressStream(compression: string): ChildStream | undefined {
  switch (compression) {
    case 'none':
      return { stream: new PassThrough(), done: Promise.resolve() };
    case 'zstd':
      return { stream: new (zstdNapi().DecompressStream)(), done: Promise.resolve() };
    case 'xz':
      return childStream('xz', ['-d', '-c'], XZ_HINT);
    case 'bzip2':
      return childStream('bzip2', ['-d', '-c'], 'install bzip2 (apt-get install bzip2)');
    default:
      return undefined;
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
