import { createReadStream, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { NarUpload } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { temporaryName } from '../util/temp-name.js';
import { forgetTemporaryFile, trackTemporaryFile } from '../util/temp-files.js';
import { encodeBase32 } from '../nix/base32.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../nix/hash.js';
import { narInfoFingerprint, type NarInfo } from '../nix/narinfo.js';
import { signFingerprint, type SigningKey } from '../nix/signing.js';
import type { PathInfo } from '../store/path-info.js';
import { COMPRESSION_EXTENSION, type CompressionMethod } from '../util/compression.js';
import { spoolErrorToUser } from './spool-errors.js';
import { spoolFileMode } from './spool-mode.js';
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
  const localPath = spoolPath(spoolDirectory, options.compression);
  trackTemporaryFile(localPath);
  let narInfo: NarInfo;
  let fileSize: number;
  try {
    const spooled =
      (info.narSize <= SMALL_NAR_BYTES ? await spoolSmall(info, options, localPath) : undefined) ??
      (await spoolStreamed(info, options, localPath));
    narInfo = checkedNarInfo(info, spooled, options);
    fileSize = spooled.fileSize;
  } catch (error) {
    await unlink(localPath).catch(() => undefined);
    forgetTemporaryFile(localPath);
    throw spoolErrorToUser(error, spoolDirectory);
  }
  return preparedAt(localPath, narInfo, fileSize);
}

/** Writes a compressed small NAR to a fresh spool file (on a small-NAR worker) and returns its path. */
export function writeSpoolFile(compressed: Buffer, compression: CompressionMethod, spoolDirectory: string): string {
  const localPath = spoolPath(spoolDirectory, compression);
  spoolStep(localPath, spoolDirectory, () => writeFileSync(localPath, compressed, { mode: spoolFileMode(spoolDirectory) }));
  return localPath;
}

/** Renames a spooled NAR to its final name in a local cache; a failed rename removes the spool file. */
export function placeSpooled(spooled: string, finalPath: string, spoolDirectory: string): string {
  spoolStep(spooled, spoolDirectory, () => renameSync(spooled, finalPath));
  return finalPath;
}

/** Runs one file operation on a spool file; if it fails, the file is removed and the error told in the user's terms. */
function spoolStep(spoolFile: string, spoolDirectory: string, operation: () => void): void {
  try {
    operation();
  } catch (error) {
    removeIfPresent(spoolFile);
    throw spoolErrorToUser(error, spoolDirectory);
  }
}

/**
 * A NAR a small-NAR worker already checked and spooled: ready to upload. One it already `placed`
 * under its final name in a local cache is never removed: a narinfo of another push may name it.
 */
export function preparedSpooled(localPath: string, narInfo: NarInfo, fileSize: number, placed = false): PreparedNar {
  return preparedAt(localPath, narInfo, fileSize, placed);
}

/** Removes a spooled NAR that will not be uploaded after all (a push stopped by a failure). */
export function discardSpooled(localPath: string): void {
  removeIfPresent(localPath);
}

/**
 * What was read, checked against what Nix recorded (a mismatch is a corrupted store path, and
 * nothing of it may be uploaded), as a signed narinfo pointing at the compressed file.
 */
export function checkedNarInfo(info: PathInfo, spooled: Spooled, options: NarOptions): NarInfo {
  const narHash = sha256Hash(spooled.narDigest);
  if (spooled.narSize !== info.narSize) throw corrupted(info, `NAR size ${spooled.narSize}, recorded ${info.narSize}`);
  if (!hashesEqual(narHash, info.narHash)) {
    throw corrupted(info, `NarHash ${formatHashBase32(narHash)}, recorded ${formatHashBase32(info.narHash)}`);
  }
  const narUrl = `nar/${encodeBase32(spooled.fileDigest)}.nar${COMPRESSION_EXTENSION[options.compression]}`;
  return signedNarInfo(info, narUrl, spooled, options);
}

function spoolPath(spoolDirectory: string, compression: CompressionMethod): string {
  return join(spoolDirectory, `${temporaryName()}.nar${COMPRESSION_EXTENSION[compression]}`);
}

function preparedAt(localPath: string, narInfo: NarInfo, fileSize: number, placed = false): PreparedNar {
  const upload: NarUpload = {
    narUrl: narInfo.url,
    fileSize,
    fileHashBase32: narInfo.url.slice('nar/'.length, narInfo.url.indexOf('.')),
    compression: narInfo.compression,
    localPath,
    taken: placed,
    open: () => createReadStream(localPath, { highWaterMark: 1 << 20 }),
  };
  // A placed NAR is the cache's from the start; a spooled one is ours until the cache takes it.
  if (placed) return { upload, narInfo, cleanup: async () => undefined };
  trackTemporaryFile(localPath);
  const cleanup = async (): Promise<void> => {
    if (!upload.taken) removeIfPresent(localPath);
    forgetTemporaryFile(localPath);
  };
  return { upload, narInfo, cleanup };
}

function signedNarInfo(info: PathInfo, narUrl: string, spooled: Spooled, options: NarOptions): NarInfo {
  const unsigned: NarInfo = {
    storePath: info.path,
    url: narUrl,
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
  // The server signs (token-only cachix push), and its API carries one signature: send none.
  return options.signingKey ? withSignature(unsigned, info, options.signingKey) : unsigned;
}

/** The narinfo signed with `key`; signatures the path already carries (e.g. cache.nixos.org's) stay valid and travel along, as with nix copy. */
export function withSignature(unsigned: NarInfo, info: PathInfo, key: SigningKey): NarInfo {
  const ours = signFingerprint(key, narInfoFingerprint(unsigned));
  const others = info.sigs.filter((sig) => !sig.startsWith(`${key.name}:`));
  return { ...unsigned, sigs: [ours, ...others] };
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already taken by the cache, or never written
  }
}
