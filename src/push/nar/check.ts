// The one comparison of a NAR we read with what Nix recorded for its store path. Every NAR we
// send passes it: spooled ones before they are staged, the stream a signing server gets before
// its last chunk.
import { UserError } from '../../errors.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../../nix/hash.js';
import type { PathInfo } from '../../store/path-info.js';

export function corrupted(info: PathInfo, what: string): UserError {
  return new UserError(
    `${info.path} does not match what Nix recorded (${what}); it was changed after it was built, and nothing of it was uploaded`,
    `check it with: nix-store --verify-path ${info.path}  (repair: nix-store --repair-path ${info.path})`,
  );
}

/** Throws when the NAR read (its sha256 and size) is not the one Nix recorded: the path changed after it was built. */
export function checkNarAgainstRecord(info: PathInfo, narDigest: Buffer, narSize: number): void {
  if (narSize !== info.narSize) throw corrupted(info, `NAR size ${narSize}, recorded ${info.narSize}`);
  const narHash = sha256Hash(narDigest);
  if (!hashesEqual(narHash, info.narHash)) {
    throw corrupted(info, `NarHash ${formatHashBase32(narHash)}, recorded ${formatHashBase32(info.narHash)}`);
  }
}
