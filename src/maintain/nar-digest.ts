import { createHash, type Hash } from 'node:crypto';
import { NarListingBuilder } from '../nix/nar/listing.js';
import { NarParser } from '../nix/nar/parser.js';
import { decompressInto } from '../util/compression.js';

// What verify takes of a NAR file: its size (FileSize), its sha256 (FileHash) only when asked (Nix
// never checks it, and it costs a third more hashing), and, once unpacked, the NAR's sha256 and
// size (NarHash, NarSize), its structure checked as Nix checks it when it unpacks (a truncated or
// malformed NAR is a NarParseError rather than a hash mismatch), and its listing (the `.ls` Nix
// writes) when the cache has one to compare, from the same parse. Large files are
// digested on worker threads (digest-pool.ts), small ones right here, where a worker's round
// trip would cost more than the work.

/** What to take beyond the NarHash, NarSize, FileSize and the NAR's structure. */
export interface DigestWants {
  fileHash: boolean;
  listing: boolean;
}

export interface NarDigest {
  /** Only when asked for. */
  fileHash?: Uint8Array | undefined;
  fileSize: number;
  narHash: Uint8Array;
  narSize: number;
  /** The `.ls` JSON of the NAR, only when asked for. */
  listing?: string | undefined;
}

/** The NAR's sha256 and size, its structure checked, and its listing if asked, as its bytes come (in any chunks). */
export class NarCheck {
  private readonly hash: Hash = createHash('sha256');
  private readonly listing: NarListingBuilder | undefined;
  private readonly parser: NarParser;
  size = 0;

  constructor(listing = false) {
    this.listing = listing ? new NarListingBuilder() : undefined;
    this.parser = new NarParser(this.listing);
    this.listing?.attach(this.parser);
  }

  /** Throws NarParseError at the first thing wrong; nothing of `bytes` is kept. */
  write(bytes: Buffer): void {
    this.hash.update(bytes);
    this.size += bytes.length;
    this.parser.write(bytes);
  }

  /** Throws NarParseError if the NAR stopped early. */
  end(): { sha256: Uint8Array; size: number; listing?: string | undefined } {
    this.parser.end();
    return { sha256: this.hash.digest(), size: this.size, listing: this.listing?.listingJson() };
  }
}

/** Files up to this size, and NARs up to NAR_HERE_MAX, are digested on the thread that reads them. */
export const FILE_HERE_MAX = 256 << 10;
export const NAR_HERE_MAX = 1 << 20;

/** Scratch buffers of digests that are over, for the next: thousands of tiny NARs, a few buffers. */
const idleScratch: Buffer[] = [];

/** Digests a NAR file in this thread (for small ones: see FILE_HERE_MAX). */
export async function digestHere(
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  compression: string,
  wants: DigestWants,
): Promise<NarDigest> {
  const fileHash = wants.fileHash && compression !== 'none' ? createHash('sha256') : undefined;
  let fileSize = 0;
  const counted = (async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      fileHash?.update(chunk);
      fileSize += chunk.length;
      yield chunk;
    }
  })();
  const check = new NarCheck(wants.listing);
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
  const fileSha256 = fileHash?.digest() ?? (wants.fileHash ? nar.sha256 : undefined);
  return { fileHash: fileSha256, fileSize, narHash: nar.sha256, narSize: nar.size, listing: nar.listing };
}
