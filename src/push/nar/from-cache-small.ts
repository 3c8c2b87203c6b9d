// A small NAR copied from another cache, whole in memory: read at once, checked, compressed again
// when asked, and written once, under its final name when the destination is a local folder. A
// copy of ten thousand tiny paths spends its time on per-file overhead, not on bytes: here each
// path costs one read and one write, no stream, no chunk queue, no thread-pool round trip per
// chunk. NARs too large for that, and compressions only a child process unpacks, take the stream.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NarStaging } from '../../caches/cache.js';
import { placeStagedNar, stagingDirectory, stagingErrorToUser } from '../../caches/nar-staging.js';
import { sha256Hash } from '../../nix/hash.js';
import type { NarInfo } from '../../nix/narinfo.js';
import { compressWhole } from '../../util/compression.js';
import { readSmallFileSync } from '../../util/read-small-file.js';
import { temporaryName } from '../../util/temp-name.js';
import { forgetTemporaryFile, trackTemporaryFile } from '../../util/temp-files.js';
import { zstdBinding } from '../../util/zstd-lazy.js';
import { FileDigests, NarDigest, narExtension, narUrlOf, type CopiedNar } from './copied-digests.js';
import { removeIfPresent, type PreparedNar } from './prepare.js';
import type { Recompression } from './recompress.js';
import { spoolFileMode } from './spool-mode.js';

/** Unpacked NARs up to this size are held whole. */
export const SMALL_NAR_BYTES = 512 << 10;
/** A compressed file of a small NAR is never larger than this (zstd's worst case for 512 KiB is below it). */
const SMALL_FILE_BYTES = 1 << 20;

/** Unpacked whole in this process: zstd through its binding, `none` as it is. */
const WHOLE_UNPACK = new Set(['zstd', 'none']);

/** Whether this NAR is copied whole in memory (see the top of this file). */
export function copiedWhole(narInfo: NarInfo, recompression: Recompression | undefined): boolean {
  if (narInfo.narSize > SMALL_NAR_BYTES || !WHOLE_UNPACK.has(narInfo.compression)) return false;
  if (narInfo.fileSize !== undefined && narInfo.fileSize > SMALL_FILE_BYTES) return false;
  return recompression === undefined || recompression.method === 'zstd' || recompression.method === 'none';
}

/**
 * The compressed file whole, or undefined when it is larger than a small NAR's file after all
 * (then it is streamed). A local file is read on this thread (readSmallFileSync says why).
 */
export async function readSmallCompressed(copied: CopiedNar): Promise<Buffer | undefined> {
  const { source, narInfo } = copied;
  const missing = (): Error => copied.mismatch({ path: narInfo.storePath }, `its NAR ${narInfo.url} is missing`);
  if (source.localFile) {
    const path = await source.localFile(narInfo.url);
    if (path === undefined) throw missing();
    try {
      return readSmallFileSync(path, SMALL_FILE_BYTES);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
      throw error;
    }
  }
  if (narInfo.fileSize === undefined) return undefined;
  const stream = await source.getFile(narInfo.url);
  if (!stream) throw missing();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    // More than the narinfo's FileSize is a wrong file: enough is read to say so, no more.
    if (size > narInfo.fileSize) {
      stream.destroy();
      throw copied.mismatch({ path: narInfo.storePath }, `file size above ${narInfo.fileSize}, narinfo says ${narInfo.fileSize}`);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

let idleDecompressor: InstanceType<ReturnType<typeof zstdBinding>['DCtx']> | undefined;

/**
 * The NAR unpacked whole, at most one byte over `narSize` (enough to tell a larger one). zstd's
 * contract: call again while input is left or the output came back full; a frame is complete when
 * the call returns 0.
 */
function unpackWhole(compressed: Buffer, narInfo: NarInfo): Buffer {
  if (narInfo.compression === 'none') return compressed;
  const context = idleDecompressor ?? new (zstdBinding().DCtx)();
  idleDecompressor = undefined;
  const output = Buffer.allocUnsafe(narInfo.narSize + 1);
  let produced = 0;
  let input = compressed;
  for (;;) {
    const room = output.subarray(produced);
    const [next, written, consumed] = context.decompressStream(room, input);
    produced += written;
    input = input.subarray(consumed);
    if (produced === output.length) break;
    if (input.length === 0 && written < room.length) {
      if (next !== 0) throw new Error('the zstd data ends in the middle of a frame (truncated)');
      break;
    }
  }
  // Only a context that finished its frames is reused: one left mid-frame is dropped.
  if (produced < output.length) idleDecompressor = context;
  return output.subarray(0, produced);
}

/** The small NAR checked and staged (placed under its final name where the destination lets us). */
export function stageSmallCopiedNar(
  copied: CopiedNar,
  compressed: Buffer,
  staging: NarStaging,
  recompression?: Recompression,
): PreparedNar {
  const { narInfo } = copied;
  const fileIn = new FileDigests(narInfo);
  fileIn.update(compressed);
  const fileInSha256 = fileIn.check(copied.mismatch);
  const nar = unpackWhole(compressed, narInfo);
  const narDigest = new NarDigest(copied);
  narDigest.update(nar);
  narDigest.check();
  const compression = recompression?.method ?? narInfo.compression;
  const output = recompression ? compressWhole(recompression.method, recompression.level, nar)! : compressed;
  const fileSha256 = recompression ? createHash('sha256').update(output).digest() : fileInSha256;
  const url = narUrlOf(fileSha256, compression);
  const directory = stagingDirectory(staging);
  const localPath = join(directory, `${temporaryName()}.nar${narExtension(compression)}`);
  trackTemporaryFile(localPath);
  let placedAt: string | undefined;
  try {
    // On this thread, not through fs/promises: writing a new file of a few hundred bytes took a
    // third to a half of the CPU time of an awaited writeFile here (2,000 files: 106-179 ms
    // against 351-576 ms), and a copy of small paths is bound by that per-file cost.
    writeFileSync(localPath, output, { mode: spoolFileMode(directory) });
    placedAt = placeStagedNar(staging, localPath, url);
  } catch (error) {
    removeIfPresent(localPath);
    throw stagingErrorToUser(staging, error);
  } finally {
    forgetTemporaryFile(localPath);
  }
  return {
    narInfo: { ...narInfo, url, compression, fileHash: sha256Hash(fileSha256), fileSize: output.length },
    localPath: placedAt ?? localPath,
    fileSize: output.length,
    placed: placedAt !== undefined,
  };
}
