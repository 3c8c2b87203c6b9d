import { createReadStream, existsSync, unlinkSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { NarUpload } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { temporaryName } from '../util/temp-name.js';
import { encodeBase32 } from '../nix/base32.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../nix/hash.js';
import { narInfoFingerprint, type NarInfo } from '../nix/narinfo.js';
import { signFingerprint, type SigningKey } from '../nix/signing.js';
import type { PathInfo } from '../store/path-info.js';
import { COMPRESSION_EXTENSION } from '../util/compression.js';
import { SMALL_NAR_BYTES, spoolSmall, spoolStreamed, type Spooled, type SpoolOptions } from './nar-spool.js';

export interface NarOptions extends SpoolOptions {
  omitDeriver: boolean;
  signingKey: SigningKey | undefined;
}

export interface PreparedNar {
  upload: NarUpload;
  narInfo: NarInfo;
  /** Removes the spooled file if the cache did not take it (a file cache renames it away). */
  cleanup(): Promise<void>;
}

export function corrupted(info: PathInfo, what: string): UserError {
  return new UserError(
    `${info.path} does not match what Nix recorded (${what}); it was changed after it was built, and nothing of it was uploaded`,
    `check it with: nix-store --verify-path ${info.path}  (repair: nix-store --repair-path ${info.path})`,
  );
}

/**
 * One pass over the store path: dump it to NAR, hash the NAR (checked against Nix's NarHash),
 * compress, hash the compressed bytes, spool them to disk. Memory stays at a few chunks.
 */
export async function prepareNar(info: PathInfo, options: NarOptions, spoolDirectory: string): Promise<PreparedNar> {
  const extension = COMPRESSION_EXTENSION[options.compression];
  const localPath = join(spoolDirectory, `${temporaryName()}.nar${extension}`);
  let spooled: Spooled;
  try {
    spooled =
      (info.narSize <= SMALL_NAR_BYTES ? await spoolSmall(info, options, localPath) : undefined) ??
      (await spoolStreamed(info, options, localPath));
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
  return { upload, narInfo: signedNarInfo(info, upload, fileDigest, options), cleanup: async () => removeIfPresent(localPath) };
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
  // The server signs (token-only cachix push), and its API carries one signature: send none.
  if (!options.signingKey) return unsigned;
  const ours = signFingerprint(options.signingKey, narInfoFingerprint(unsigned));
  // Signatures the path already carries (e.g. cache.nixos.org's) stay valid and travel along, as with nix copy.
  const keyName = options.signingKey.name;
  const others = info.sigs.filter((sig) => !sig.startsWith(`${keyName}:`));
  return { ...unsigned, sigs: [ours, ...others] };
}

/** A file cache has usually renamed the spool file away already: then there is nothing to do. */
function removeIfPresent(path: string): void {
  if (!existsSync(path)) return; // the usual case for a file cache: a stat, not a thrown ENOENT
  try {
    unlinkSync(path);
  } catch {
    // already taken by the cache, or never written
  }
}
