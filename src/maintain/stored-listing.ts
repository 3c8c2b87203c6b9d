// A path's `<hash>.ls` read back from a cache, as Nix would read it: plain, or compressed as
// `ls-compression=` wrote it (br, xz, zstd). Over HTTP the Content-Encoding tells a reader which;
// a stream from any server is decoded here by its first bytes, so every backend reads alike.
import type { Readable } from 'node:stream';
import { brotliDecompressSync } from 'node:zlib';
import type { BinaryCache } from '../caches/cache.js';
import { decompressInto } from '../util/compression.js';

/** A listing of a path of a million files is tens of megabytes; anything far larger is not one. */
const MAX_LISTING_BYTES = 256 << 20;
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_LISTING_BYTES) {
      stream.destroy();
      throw new Error(`it is larger than ${MAX_LISTING_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function unpack(bytes: Buffer, compression: 'xz' | 'zstd'): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let room = Buffer.allocUnsafe(64 << 10);
  await decompressInto(
    (async function* () {
      yield bytes;
    })(),
    compression,
    {
      room: async () => room,
      commit: (count) => {
        pieces.push(Buffer.from(room.subarray(0, count)));
        room = Buffer.allocUnsafe(64 << 10);
      },
    },
  );
  return Buffer.concat(pieces);
}

/**
 * The text of a `.ls` file's or build log's bytes, whichever way Nix may have stored it (plain, or
 * as `ls-compression=` / `log-compression=` wrote it).
 */
export async function decodeStoredText(bytes: Buffer): Promise<string> {
  if (bytes.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC)) return (await unpack(bytes, 'xz')).toString('utf8');
  if (bytes.subarray(0, ZSTD_MAGIC.length).equals(ZSTD_MAGIC)) return (await unpack(bytes, 'zstd')).toString('utf8');
  // Plain JSON starts with '{' (maybe after spaces); brotli has no magic of its own.
  if (/^\s*\{/.test(bytes.subarray(0, 16).toString('latin1'))) return bytes.toString('utf8');
  try {
    return brotliDecompressSync(bytes).toString('utf8');
  } catch {
    return bytes.toString('utf8');
  }
}

/** The `.ls` text of the path with this hash part, or undefined when the cache has none. */
export async function readStoredListing(cache: BinaryCache, hashPart: string): Promise<string | undefined> {
  const stream = await cache.getFile(`${hashPart}.ls`);
  return stream && decodeStoredText(await readAll(stream));
}
