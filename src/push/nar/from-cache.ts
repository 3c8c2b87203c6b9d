// A NAR's journey when it comes from another cache rather than the store (copy): read the
// compressed file, unpack it on the way to check NarHash and NarSize (and FileHash and FileSize
// over the compressed bytes), and either keep the compressed bytes as they are or compress them
// again for a cache that wants another method. Whatever does not match is refused before the
// destination gets any of it: a staged file is checked before upload, a stream holds its last
// chunk back until the check.
import { createHash, type Hash as Hasher } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BinaryCache, NarSource, NarStaging } from '../../caches/cache.js';
import { stagingDirectory } from '../../caches/nar-staging.js';
import { UserError } from '../../errors.js';
import { encodeBase32 } from '../../nix/base32.js';
import { formatHashBase32, hashesEqual, sha256Hash, type Hash } from '../../nix/hash.js';
import type { NarInfo } from '../../nix/narinfo.js';
import { decompressInto } from '../../util/compression.js';
import { temporaryName } from '../../util/temp-name.js';
import { forgetTemporaryFile, trackTemporaryFile } from '../../util/temp-files.js';
import { checkNarAgainstRecord, type Mismatch } from './check.js';
import { compressed, type Recompression } from './recompress.js';

export type { Recompression };
import { removeIfPresent, type PreparedNar } from './prepare.js';
import { spoolFileMode } from './spool-mode.js';

/** The extension Nix gives a NAR file of each compression it writes. */
const EXTENSION: Record<string, string> = { zstd: '.zst', xz: '.xz', bzip2: '.bz2', br: '.br', none: '' };

/** Unpacked chunks queued ahead of the reader: a few MiB at most. */
const QUEUED_CHUNKS = 4;
const ROOM_BYTES = 1 << 20;

/** What a copied NAR is checked against, and how a mismatch is worded. */
export interface CopiedNar {
  source: BinaryCache;
  narInfo: NarInfo;
  mismatch: Mismatch;
  /** Told of each unpacked chunk, for progress. */
  onNarBytes?: ((bytes: number) => void) | undefined;
}

/** A NAR file this small is read, checked and written in one piece each: no stream, no file open until checked. */
const SMALL_FILE_BYTES = 1 << 20;

async function openCompressed(source: BinaryCache, narInfo: NarInfo): Promise<AsyncIterable<Buffer> | Iterable<Buffer> | undefined> {
  if (source.localFile) {
    const path = await source.localFile(narInfo.url);
    if (path === undefined) return undefined;
    if (narInfo.fileSize !== undefined && narInfo.fileSize <= SMALL_FILE_BYTES) {
      try {
        return [await readFile(path)];
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    }
    return createReadStream(path, { highWaterMark: ROOM_BYTES });
  }
  return source.getFile(narInfo.url);
}

/** The compressed file's bytes, hashed as they pass (sha256 for the copy, and the narinfo's own FileHash algorithm). */
class FileDigests {
  readonly sha256 = createHash('sha256');
  private readonly recorded: Hasher | undefined;
  size = 0;

  constructor(private readonly narInfo: NarInfo) {
    const algorithm = narInfo.fileHash?.algorithm;
    this.recorded = algorithm && algorithm !== 'sha256' ? createHash(algorithm) : undefined;
  }

  update(chunk: Buffer): void {
    this.sha256.update(chunk);
    this.recorded?.update(chunk);
    this.size += chunk.length;
  }

  /** Throws when the compressed file is not the one the narinfo names; returns its sha256. */
  check(mismatch: Mismatch): Buffer {
    const digest = this.sha256.digest();
    const { narInfo } = this;
    const path = { path: narInfo.storePath };
    if (narInfo.fileSize !== undefined && narInfo.fileSize !== this.size) {
      throw mismatch(path, `file size ${this.size}, narinfo says ${narInfo.fileSize}`);
    }
    if (narInfo.fileHash) {
      const actual: Hash = this.recorded ? { algorithm: narInfo.fileHash.algorithm, digest: this.recorded.digest() } : sha256Hash(digest);
      if (!hashesEqual(actual, narInfo.fileHash)) {
        throw mismatch(path, `FileHash ${formatHashBase32(actual)}, narinfo says ${formatHashBase32(narInfo.fileHash)}`);
      }
    }
    return digest;
  }
}

async function* hashedCompressed(copied: CopiedNar, digests: FileDigests): AsyncGenerator<Buffer> {
  const { source, narInfo } = copied;
  const stream = await openCompressed(source, narInfo);
  if (!stream) throw copied.mismatch({ path: narInfo.storePath }, `its NAR ${narInfo.url} is missing`);
  for await (const chunk of stream) {
    digests.update(chunk);
    yield chunk;
  }
}

/**
 * The unpacked NAR as chunks of memory no one reuses, read ahead by a few; the unpacking stops
 * when the reader does.
 */
async function* unpacked(compressed: AsyncIterable<Buffer>, narInfo: NarInfo): AsyncGenerator<Buffer> {
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

/** NAR bytes counted and hashed as they pass; more than recorded stops at once. */
class NarDigest {
  readonly hasher = createHash('sha256');
  size = 0;

  constructor(private readonly copied: CopiedNar) {}

  update(chunk: Buffer): void {
    this.size += chunk.length;
    const { narInfo, mismatch } = this.copied;
    if (this.size > narInfo.narSize) throw mismatch({ path: narInfo.storePath }, `NAR larger than the recorded ${narInfo.narSize} bytes`);
    this.hasher.update(chunk);
    this.copied.onNarBytes?.(chunk.length);
  }

  check(): void {
    const { narInfo, mismatch } = this.copied;
    checkNarAgainstRecord({ path: narInfo.storePath, ...narInfo }, this.hasher.digest(), this.size, mismatch);
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  for (let written = 0; written < chunk.length;) written += (await handle.write(chunk, written)).bytesWritten;
}

function narUrlOf(fileSha256: Buffer, compression: string): string {
  return `nar/${encodeBase32(fileSha256)}.nar${EXTENSION[compression] ?? ''}`;
}

/** The NAR from the source cache, checked, in a staged file in the destination's staging place. */
export async function stageCopiedNar(copied: CopiedNar, staging: NarStaging, recompression?: Recompression): Promise<PreparedNar> {
  const { narInfo } = copied;
  const compression = recompression?.method ?? narInfo.compression;
  const directory = stagingDirectory(staging);
  const localPath = join(directory, `${temporaryName()}.nar${EXTENSION[compression] ?? ''}`);
  trackTemporaryFile(localPath);
  const fileIn = new FileDigests(narInfo);
  const nar = new NarDigest(copied);
  const fileOut = recompression ? createHash('sha256') : undefined;
  let fileOutSize = 0;
  // Held in memory while small, so a small NAR touches the disk once, whole and checked.
  const held: Buffer[] = [];
  let heldBytes = 0;
  let handle: FileHandle | undefined;
  try {
    const write = async (chunk: Buffer): Promise<void> => {
      if (!handle && heldBytes + chunk.length <= SMALL_FILE_BYTES) {
        held.push(chunk);
        heldBytes += chunk.length;
        return;
      }
      if (!handle) {
        handle = await open(localPath, 'w', spoolFileMode(directory));
        for (const earlier of held.splice(0)) await writeAll(handle, earlier);
      }
      await writeAll(handle, chunk);
    };
    if (!recompression) {
      // The compressed bytes as they are: kept while they are unpacked to be checked.
      const passing = (async function* () {
        for await (const chunk of hashedCompressed(copied, fileIn)) {
          await write(chunk);
          yield chunk;
        }
      })();
      for await (const chunk of unpacked(passing, narInfo)) nar.update(chunk);
    } else {
      const checkedNar = (async function* () {
        for await (const chunk of unpacked(hashedCompressed(copied, fileIn), narInfo)) {
          nar.update(chunk);
          yield chunk;
        }
      })();
      for await (const chunk of compressed(checkedNar, recompression)) {
        fileOut!.update(chunk);
        fileOutSize += chunk.length;
        // The compressor reuses its output buffer: what is held must be a copy.
        await write(handle ? chunk : Buffer.from(chunk));
      }
    }
    const fileInSha256 = fileIn.check(copied.mismatch);
    nar.check();
    if (handle) await handle.close();
    else writeFileSync(localPath, held.length === 1 ? held[0]! : Buffer.concat(held), { mode: spoolFileMode(directory) });
    const fileSha256 = fileOut ? fileOut.digest() : fileInSha256;
    const fileSize = fileOut ? fileOutSize : fileIn.size;
    return {
      narInfo: {
        ...narInfo,
        url: narUrlOf(fileSha256, compression),
        compression,
        fileHash: sha256Hash(fileSha256),
        fileSize,
      },
      localPath,
      fileSize,
      placed: false,
    };
  } catch (error) {
    await handle?.close().catch(() => undefined);
    removeIfPresent(localPath);
    throw error;
  } finally {
    forgetTemporaryFile(localPath);
  }
}

/**
 * The unpacked NAR as a signing server (attic) takes it: each `open()` reads the source cache
 * afresh, and the last chunk is held back until NarHash, NarSize and FileHash are checked, so
 * the server never receives a whole wrong NAR.
 */
export function narSourceFromCache(copied: CopiedNar, omitDeriver: boolean): NarSource {
  const { narInfo } = copied;
  return {
    storePath: narInfo.storePath,
    narHash: narInfo.narHash,
    narSize: narInfo.narSize,
    references: narInfo.references,
    deriver: omitDeriver ? undefined : narInfo.deriver,
    sigs: narInfo.sigs,
    ca: narInfo.ca,
    open: () => checkedUnpacked(copied),
  };
}

async function* checkedUnpacked(copied: CopiedNar): AsyncGenerator<Buffer> {
  const fileIn = new FileDigests(copied.narInfo);
  const nar = new NarDigest(copied);
  let held: Buffer | undefined;
  for await (const chunk of unpacked(hashedCompressed(copied, fileIn), copied.narInfo)) {
    nar.update(chunk);
    if (held) yield held;
    held = chunk;
  }
  fileIn.check(copied.mismatch);
  nar.check();
  if (held) yield held;
}
