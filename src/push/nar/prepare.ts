// A NAR's journey from the store to a staged file, the same on the main thread and on a small-NAR
// worker: dump the path, check the NAR against Nix's NarHash and NarSize, compress, hash the
// compressed bytes and stage them where the cache wants them (for a cache in a local folder,
// under their final name). Signing is not part of it: the pipeline signs each narinfo once, after.
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { placeStagedNar, stagingDirectory, stagingErrorToUser } from '../../caches/nar-staging.js';
import type { NarStaging } from '../../caches/cache.js';
import { encodeBase32 } from '../../nix/base32.js';
import { sha256Hash } from '../../nix/hash.js';
import type { NarInfo } from '../../nix/narinfo.js';
import type { PathInfo } from '../../store/path-info.js';
import { COMPRESSION_EXTENSION, type CompressionMethod } from '../../util/compression.js';
import { temporaryName } from '../../util/temp-name.js';
import { forgetTemporaryFile, trackTemporaryFile } from '../../util/temp-files.js';
import { checkNarAgainstRecord } from './check.js';
import { spoolFileMode } from './spool-mode.js';
import type { NarListing } from './listing.js';
import { compressSmall, SMALL_NAR_BYTES, spooledFromMemory, spoolStreamed, type Spooled, type SpoolOptions } from './spool.js';

export interface NarOptions extends SpoolOptions {
  omitDeriver: boolean;
}

export interface NarStage {
  staging: NarStaging;
  /** Put the checked NAR under its final name now (a small-NAR worker into a local cache), not at upload. */
  place: boolean;
  /** Only in memory (a small-NAR worker): a path larger than Nix recorded gives undefined, to be streamed by the caller. */
  inMemoryOnly?: boolean;
}

/** A checked, compressed NAR on local disk with its unsigned narinfo: plain data, so a worker can hand it over. */
export interface PreparedNar {
  narInfo: NarInfo;
  localPath: string;
  fileSize: number;
  /** Already under its final name in the cache: the cache's from now on, never removed by us. */
  placed: boolean;
  /** `.ls` and `debuginfo/` for this NAR, when the push writes them. */
  listing?: NarListing | undefined;
}

/**
 * One pass over the store path. Memory stays at a few chunks for a large NAR; a small one is
 * built, checked and compressed in memory, and written only once checked. A failure leaves
 * nothing behind: the staged file is removed and the error told in the user's terms.
 */
export async function prepareNar(info: PathInfo, options: NarOptions, stage: NarStage): Promise<PreparedNar | undefined> {
  const directory = stagingDirectory(stage.staging);
  const localPath = join(directory, `${temporaryName()}.nar${COMPRESSION_EXTENSION[options.compression]}`);
  trackTemporaryFile(localPath);
  try {
    let spooled: Spooled | undefined;
    const small = info.narSize <= SMALL_NAR_BYTES ? await compressSmall(info, options) : undefined;
    if (small) {
      spooled = spooledFromMemory(small);
      checkNarAgainstRecord(info, spooled.narDigest, spooled.narSize);
      // A few KiB into the page cache: cheaper done at once than as a round trip through the thread pool.
      writeFileSync(localPath, small.compressed, { mode: spoolFileMode(directory) });
    } else {
      if (stage.inMemoryOnly) {
        forgetTemporaryFile(localPath);
        return undefined;
      }
      spooled = await spoolStreamed(info, options, localPath);
      checkNarAgainstRecord(info, spooled.narDigest, spooled.narSize);
    }
    const narInfo = unsignedNarInfo(info, spooled, options);
    const placedAt = stage.place ? placeStagedNar(stage.staging, localPath, narInfo.url) : undefined;
    if (placedAt !== undefined) forgetTemporaryFile(localPath);
    return {
      narInfo,
      localPath: placedAt ?? localPath,
      fileSize: spooled.fileSize,
      placed: placedAt !== undefined,
      listing: spooled.listing,
    };
  } catch (error) {
    removeIfPresent(localPath);
    forgetTemporaryFile(localPath);
    throw stagingErrorToUser(stage.staging, error);
  }
}

function unsignedNarInfo(info: PathInfo, spooled: Spooled, options: NarOptions): NarInfo {
  return {
    storePath: info.path,
    url: `nar/${encodeBase32(spooled.fileDigest)}.nar${COMPRESSION_EXTENSION[options.compression as CompressionMethod]}`,
    compression: options.compression,
    fileHash: sha256Hash(spooled.fileDigest),
    fileSize: spooled.fileSize,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    deriver: options.omitDeriver ? undefined : info.deriver,
    sigs: [],
    ca: info.ca,
  };
}

export function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already placed in the cache, or never written
  }
}
