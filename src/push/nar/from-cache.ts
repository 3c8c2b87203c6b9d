// A NAR's journey when it comes from another cache rather than the store (copy): read the
// compressed file, unpack it on the way to check NarHash and NarSize (and FileHash and FileSize
// over the compressed bytes), and either keep the compressed bytes as they are or compress them
// again for a cache that wants another method. Whatever does not match is refused before the
// destination gets any of it: a staged file is checked before upload, a stream holds its last
// chunk back until the check.
import { createHash } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BinaryCache, NarSource, NarStaging } from '../../caches/cache.js';
import { stagingDirectory } from '../../caches/nar-staging.js';
import { sha256Hash } from '../../nix/hash.js';
import type { NarInfo } from '../../nix/narinfo.js';
import { temporaryName } from '../../util/temp-name.js';
import { forgetTemporaryFile, trackTemporaryFile } from '../../util/temp-files.js';
import { FileDigests, NarDigest, narExtension, narUrlOf, type CopiedNar } from './copied-digests.js';
import { copiedWhole, readSmallCompressed, stageSmallCopiedNar } from './from-cache-small.js';
import { compressed, type Recompression } from './recompress.js';
import { removeIfPresent, type PreparedNar } from './prepare.js';
import { spoolFileMode } from './spool-mode.js';
import { unpacked } from './unpack-stream.js';

export type { CopiedNar, Recompression };

const READ_BYTES = 1 << 20;
/** A streamed NAR's file is held in memory up to this size, so a small one touches the disk once, whole and checked. */
const HELD_BYTES = 1 << 20;

async function openCompressed(source: BinaryCache, narInfo: NarInfo): Promise<AsyncIterable<Buffer> | undefined> {
  if (!source.localFile) return source.getFile(narInfo.url);
  const path = await source.localFile(narInfo.url);
  return path === undefined ? undefined : createReadStream(path, { highWaterMark: READ_BYTES });
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

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  for (let written = 0; written < chunk.length;) written += (await handle.write(chunk, written)).bytesWritten;
}

/**
 * The NAR from the source cache, checked, in a staged file in the destination's staging place
 * (under its final name, for a small one copied into a local folder).
 */
export async function stageCopiedNar(copied: CopiedNar, staging: NarStaging, recompression?: Recompression): Promise<PreparedNar> {
  if (copiedWhole(copied.narInfo, recompression)) {
    const whole = await readSmallCompressed(copied);
    if (whole) return stageSmallCopiedNar(copied, whole, staging, recompression);
  }
  return stageStreamed(copied, staging, recompression);
}

async function stageStreamed(copied: CopiedNar, staging: NarStaging, recompression: Recompression | undefined): Promise<PreparedNar> {
  const { narInfo } = copied;
  const compression = recompression?.method ?? narInfo.compression;
  const directory = stagingDirectory(staging);
  const localPath = join(directory, `${temporaryName()}.nar${narExtension(compression)}`);
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
      if (!handle && heldBytes + chunk.length <= HELD_BYTES) {
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
    // Written at once when it was held whole (see from-cache-small.ts for why on this thread).
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
