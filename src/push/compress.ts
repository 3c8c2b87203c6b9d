import { spawn } from 'node:child_process';
import { PassThrough, Transform, type Duplex } from 'node:stream';
import { CompressStream, Compressor } from 'zstd-napi';
import { UserError } from '../errors.js';

export type CompressionMethod = 'zstd' | 'xz' | 'none';

/** The narinfo `Compression:` value and the NAR file extension for each method, as Nix names them. */
export const COMPRESSION_EXTENSION: Record<CompressionMethod, string> = { zstd: '.zst', xz: '.xz', none: '' };

/** zstd's own default level, which is also what `nix copy ?compression=zstd` uses. */
export const DEFAULT_ZSTD_LEVEL = 3;
export const DEFAULT_XZ_LEVEL = 6;

export function checkCompressionLevel(method: CompressionMethod, level: number | undefined): number | undefined {
  if (level === undefined || method === 'none') return level;
  const max = method === 'zstd' ? 19 : 9;
  const min = method === 'zstd' ? 1 : 0;
  if (level < min || level > max) {
    throw new UserError(`compression level ${level} is out of range for ${method}`, `use -l between ${min} and ${max}`);
  }
  return level;
}

/**
 * A streaming compressor. zstd runs on zstd's own worker threads (nbWorkers), so compression
 * overlaps with reading and hashing on the main thread; xz is the xz binary, as Nix's is a library
 * we cannot load from Node.
 */
export function createCompressStream(method: CompressionMethod, level: number | undefined, workers: number): Duplex {
  switch (method) {
    case 'none':
      return new PassThrough({ highWaterMark: 1 << 20 });
    case 'zstd':
      return new CompressStream({ compressionLevel: level ?? DEFAULT_ZSTD_LEVEL, nbWorkers: workers });
    case 'xz':
      return xzStream(level ?? DEFAULT_XZ_LEVEL);
  }
}

const wholeCompressors = new Map<number, Compressor>();

/** Compresses a small NAR in one call, without threads: cheaper than a stream for tiny paths. */
export function compressWhole(method: CompressionMethod, level: number | undefined, input: Buffer): Buffer | undefined {
  if (method === 'none') return input;
  if (method !== 'zstd') return undefined;
  const compressionLevel = level ?? DEFAULT_ZSTD_LEVEL;
  // One context per level, reused: making a zstd context per tiny path costs more than compressing it.
  let compressor = wholeCompressors.get(compressionLevel);
  if (!compressor) {
    compressor = new Compressor();
    compressor.setParameters({ compressionLevel });
    wholeCompressors.set(compressionLevel, compressor);
  }
  return compressor.compress(input);
}

function xzStream(level: number): Duplex {
  const child = spawn('xz', ['--compress', '--stdout', `-${level}`, '-T0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const input = new Transform({
    transform(chunk, _encoding, done) {
      if (!child.stdin.write(chunk)) child.stdin.once('drain', () => done());
      else done();
    },
    flush(done) {
      child.stdin.end();
      child.once('close', (code) => done(code === 0 ? null : new Error(`xz failed (${code}): ${stderr.trim()}`)));
    },
  });
  child.on('error', (error) =>
    input.destroy(new UserError(`cannot run xz: ${error.message}`, 'install xz (apt-get install xz-utils) or use -m zstd')),
  );
  child.stdout.on('data', (chunk: Buffer) => input.push(chunk));
  return input;
}
