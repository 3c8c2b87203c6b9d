import { createHash, type Hash } from 'node:crypto';
import { NarParser } from '../nix/nar/parser.js';
import { decompressInto } from '../util/compression.js';

// What verify takes of a NAR file: the file's sha256 and size (FileHash, FileSize), and, once
// unpacked, the NAR's (NarHash, NarSize), its structure checked as Nix checks it when it unpacks
// (a truncated or malformed NAR is a NarParseError rather than a hash mismatch). Large files are
// digested on worker threads (digest-pool.ts), small ones right here, where a worker's round
// trip would cost more than the work.

export interface NarDigest {
  fileHash: Uint8Array;
  fileSize: number;
  narHash: Uint8Array;
  narSize: number;
}

/** The NAR's sha256 and size, and its structure checked, as its bytes come (in any chunks). */
export class NarCheck {
  private readonly hash: Hash = createHash('sha256');
  private readonly parser = new NarParser();
  size = 0;

  /** Throws NarParseError at the first thing wrong; nothing of `bytes` is kept. */
  write(bytes: Buffer): void {
    this.hash.update(bytes);
    this.size += bytes.length;
    this.parser.write(bytes);
  }

  /** Throws NarParseError if the NAR stopped early. */
  end(): { sha256: Uint8Array; size: number } {
    this.parser.end();
    return { sha256: this.hash.digest(), size: this.size };
  }
}

/** Files up to this size, and NARs up to NAR_HERE_MAX, are digested on the thread that reads them. */
export const FILE_HERE_MAX = 256 << 10;
export const NAR_HERE_MAX = 1 << 20;

/** Scratch buffers of digests that are over, for the next: thousands of tiny NARs, a few buffers. */
const idleScratch: Buffer[] = [];

/** Digests a NAR file in this thread (for small ones: see FILE_HERE_MAX). */
export async function digestHere(source: AsyncIterable<Buffer> | Iterable<Buffer>, compression: string): Promise<NarDigest> {
  const fileHash = compression === 'none' ? undefined : createHash('sha256');
  let fileSize = 0;
  const counted = (async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      fileHash?.update(chunk);
      fileSize += chunk.length;
      yield chunk;
    }
  })();
  const check = new NarCheck();
  // Each piece is hashed and parsed as soon as it is unpacked into this.
  const scratch = idleScratch.pop() ?? Buffer.allocUnsafeSlow(64 << 10);
  try {
    const unpacked = await decompressInto(counted, compression, {
      room: async () => scratch,
      commit: (count) => check.write(scratch.subarray(0, count)),
    });
    if (!unpacked) throw new Error(`compression '${compression}' is not supported here`);
  } finally {
    idleScratch.push(scratch);
  }
  const nar = check.end();
  // An uncompressed file is the NAR itself: the same bytes, the same sha256.
  return { fileHash: fileHash?.digest() ?? nar.sha256, fileSize, narHash: nar.sha256, narSize: nar.size };
}
