// What a NAR copied from another cache is checked against as its bytes pass: the compressed file
// (FileSize, FileHash in the narinfo's own algorithm, and the sha256 that names it in the
// destination) and the unpacked NAR (NarSize, NarHash). The streamed and the small-file paths
// share these, so both refuse the same things in the same words.
import { createHash, type Hash as Hasher } from 'node:crypto';
import type { BinaryCache } from '../../caches/cache.js';
import { encodeBase32 } from '../../nix/base32.js';
import { formatHashBase32, hashesEqual, sha256Hash, type Hash } from '../../nix/hash.js';
import type { NarInfo } from '../../nix/narinfo.js';
import { checkNarAgainstRecord, type Mismatch } from './check.js';

/** What a copied NAR is checked against, and how a mismatch is worded. */
export interface CopiedNar {
  source: BinaryCache;
  narInfo: NarInfo;
  mismatch: Mismatch;
  /** Told of each unpacked chunk, for progress. */
  onNarBytes?: ((bytes: number) => void) | undefined;
}

/** The extension Nix gives a NAR file of each compression it writes. */
const EXTENSION: Record<string, string> = { zstd: '.zst', xz: '.xz', bzip2: '.bz2', br: '.br', none: '' };

export function narExtension(compression: string): string {
  return EXTENSION[compression] ?? '';
}

/** The destination's name for a compressed NAR: `nar/<sha256 of the file, base32>.nar<ext>`, as Nix names it. */
export function narUrlOf(fileSha256: Buffer, compression: string): string {
  return `nar/${encodeBase32(fileSha256)}.nar${narExtension(compression)}`;
}

/** The compressed file's bytes, hashed as they pass (sha256 for the copy, and the narinfo's own FileHash algorithm). */
export class FileDigests {
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

/** NAR bytes counted and hashed as they pass; more than recorded stops at once. */
export class NarDigest {
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
