import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { NarUpload } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { encodeBase32 } from '../nix/base32.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../nix/hash.js';
import { dumpNar } from '../nix/nar/dump.js';
import { narInfoFingerprint, type NarInfo } from '../nix/narinfo.js';
import { signFingerprint, type SigningKey } from '../nix/signing.js';
import type { PathInfo } from '../store/path-info.js';
import { narReaders, type NarReadResult } from './nar-reader.js';
import { COMPRESSION_EXTENSION, compressWhole, createCompressStream, type CompressionMethod } from './compress.js';

export interface NarOptions {
  compression: CompressionMethod;
  compressionLevel?: number | undefined;
  omitDeriver: boolean;
  signingKey: SigningKey;
  /** zstd worker threads for one streamed NAR. */
  zstdWorkers: number;
}

export interface PreparedNar {
  upload: NarUpload;
  narInfo: NarInfo;
  /** Removes the spooled file if the cache did not take it (a file cache renames it away). */
  cleanup(): Promise<void>;
}

/** Below this, a NAR is built and compressed in memory in one call: no stream, no threads. */
export const SMALL_NAR_BYTES = 1 << 20;

function corrupted(info: PathInfo, what: string): UserError {
  return new UserError(
    `${info.path} does not match what Nix recorded (${what}); it was changed after it was built, and nothing of it was uploaded`,
    `check it with: nix-store --verify-path ${info.path}  (repair: nix-store --repair-path ${info.path})`,
  );
}

/** Sha256 and byte count of whatever flows through, passed on unchanged. */
function hashingTransform(): Transform & { digest(): Buffer; bytes: number } {
  const hash = createHash('sha256');
  const transform = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      (transform as unknown as { bytes: number }).bytes += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { digest(): Buffer; bytes: number };
  transform.bytes = 0;
  transform.digest = () => hash.digest();
  return transform;
}

/**
 * One pass over the store path: dump it to NAR, hash the NAR (checked against Nix's NarHash),
 * compress, hash the compressed bytes, spool them to disk. Memory stays at a few chunks.
 */
export async function prepareNar(info: PathInfo, options: NarOptions, spoolDirectory: string): Promise<PreparedNar> {
  const extension = COMPRESSION_EXTENSION[options.compression];
  const localPath = join(spoolDirectory, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}.nar${extension}`);
  let spooled: Spooled;
  try {
    spooled = (info.narSize <= SMALL_NAR_BYTES ? await spoolSmall(info, options, localPath) : undefined) ?? (await spoolStreamed(info, options, localPath));
    const narHash = sha256Hash(spooled.narDigest);
    if (spooled.narSize !== info.narSize) throw corrupted(info, `NAR size ${spooled.narSize}, recorded ${info.narSize}`);
    if (!hashesEqual(narHash, info.narHash)) {
      throw corrupted(info, `NarHash ${formatHashBase32(narHash)}, recorded ${formatHashBase32(info.narHash)}`);
    }
  } catch (error) {
    await unlink(localPath).catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new UserError(
        `no space left on the device holding ${spoolDirectory}, where compressed NARs are written before upload`,
        'free some space and push again (for remote caches, TMPDIR picks where NARs are spooled); nothing half-written was left in the cache',
      );
    }
    throw error;
  }
  const { fileDigest, fileSize } = spooled;
  const fileHashBase32 = encodeBase32(fileDigest);
  const upload: NarUpload = {
    narUrl: `nar/${fileHashBase32}.nar${extension}`,
    fileSize,
    fileHashBase32,
    compression: options.compression,
    localPath,
    open: () => createReadStream(localPath, { highWaterMark: 1 << 20 }),
  };
  return { upload, narInfo: signedNarInfo(info, upload, fileDigest, options), cleanup: () => unlink(localPath).catch(() => undefined) };
}

interface Spooled {
  narDigest: Buffer;
  narSize: number;
  fileDigest: Buffer;
  fileSize: number;
}

/**
 * A small NAR is built, hashed and compressed in memory in one call each: no stream, no threads.
 * Returns undefined when the path turns out larger than Nix recorded (it is then streamed).
 */
async function spoolSmall(info: PathInfo, options: NarOptions, localPath: string): Promise<Spooled | undefined> {
  const narHasher = createHash('sha256');
  const chunks: Buffer[] = [];
  let narSize = 0;
  // One chunk sized to the NAR: a fresh 1 MiB chunk per tiny path would keep the GC busy.
  for await (const chunk of dumpNar(info.path, { chunkSize: Math.max(4096, info.narSize) })) {
    narHasher.update(chunk);
    narSize += chunk.length;
    chunks.push(chunk);
    if (narSize > SMALL_NAR_BYTES * 2) return undefined;
  }
  const whole = compressWhole(options.compression, options.compressionLevel, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  if (!whole) return undefined;
  await writeFile(localPath, whole);
  return { narDigest: narHasher.digest(), narSize, fileDigest: createHash('sha256').update(whole).digest(), fileSize: whole.length };
}

/** A large NAR is dumped and hashed on a worker thread while this thread compresses and writes. */
async function spoolStreamed(info: PathInfo, options: NarOptions, localPath: string): Promise<Spooled> {
  const reading = narReaders().read(info.path);
  let result: NarReadResult | undefined;
  const source = Readable.from(
    (async function* () {
      for (;;) {
        const next = await reading.next();
        if (next.done) {
          result = next.value;
          return;
        }
        yield next.value;
      }
    })(),
    { objectMode: false, highWaterMark: 1 << 20 },
  );
  const fileHasher = hashingTransform();
  await pipeline(
    source,
    createCompressStream(options.compression, options.compressionLevel, options.zstdWorkers),
    fileHasher,
    createWriteStream(localPath, { highWaterMark: 1 << 20 }),
  );
  if (!result) throw new Error(`reading ${info.path} ended without a result`);
  return { ...result, fileDigest: fileHasher.digest(), fileSize: fileHasher.bytes };
}

function signedNarInfo(info: PathInfo, upload: NarUpload, fileDigest: Buffer, options: NarOptions): NarInfo {
  const unsigned: NarInfo = {
    storePath: info.path,
    url: upload.narUrl,
    compression: options.compression,
    fileHash: sha256Hash(fileDigest),
    fileSize: upload.fileSize,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    deriver: options.omitDeriver ? undefined : info.deriver,
    sigs: [],
    ca: info.ca,
  };
  const ours = signFingerprint(options.signingKey, narInfoFingerprint(unsigned));
  // Signatures the path already carries (e.g. cache.nixos.org's) stay valid and travel along, as with nix copy.
  const others = info.sigs.filter((sig) => !sig.startsWith(`${options.signingKey.name}:`));
  return { ...unsigned, sigs: [ours, ...others] };
}
