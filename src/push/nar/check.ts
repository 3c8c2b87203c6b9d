// The one comparison of a NAR we read with what Nix recorded for its store path. Every NAR we
// send passes it: spooled ones before they are staged, the stream a signing server gets before
// its last chunk.
import { UserError } from '../../errors.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../../nix/hash.js';
import type { PathInfo } from '../../store/path-info.js';

export function corrupted(info: Pick<PathInfo, 'path'>, what: string): UserError {
  return new UserError(
    `${info.path} does not match what Nix recorded (${what}); it was changed after it was built, and nothing of it was uploaded`,
    `check it with: nix-store --verify-path ${info.path}  (repair: nix-store --repair-path ${info.path})`,
  );
}

/** Whose record a NAR is held against, and the error when it does not match (a store path by default). */
export type Mismatch = (info: Pick<PathInfo, 'path'>, what: string) => Error;

/**
 * Throws when the NAR read (its sha256 and size) is not the one recorded: by Nix for a store path
 * (it changed after it was built), or by a cache's narinfo for a NAR copied from it.
 */
export function checkNarAgainstRecord(
  info: Pick<PathInfo, 'path' | 'narHash' | 'narSize'>,
  narDigest: Buffer,
  narSize: number,
  mismatch: Mismatch = corrupted,
): void {
  if (narSize !== info.narSize) throw mismatch(info, `NAR size ${narSize}, recorded ${info.narSize}`);
  const narHash = sha256Hash(narDigest);
  if (!hashesEqual(narHash, info.narHash)) {
    throw mismatch(info, `NarHash ${formatHashBase32(narHash)}, recorded ${formatHashBase32(info.narHash)}`);
  }
}
