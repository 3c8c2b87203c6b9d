// The one place a narinfo gets our signature: after its NAR is prepared and checked, on the main
// thread, for every path, whether it was prepared here or on a small-NAR worker.
import { narInfoFingerprint, type NarInfo } from '../nix/narinfo.js';
import { signFingerprint, type SigningKey } from '../nix/signing.js';
import type { PathInfo } from '../store/path-info.js';

/**
 * The narinfo signed with `key`; signatures the path already carries (e.g. cache.nixos.org's)
 * stay valid and travel along, as with nix copy. Without a key (a token-only cachix push) the
 * narinfo goes unsigned and the service signs it; the cachix API carries one signature, so none
 * of the others either.
 */
export function signedNarInfo(unsigned: NarInfo, info: PathInfo, key: SigningKey | undefined): NarInfo {
  if (!key) return unsigned;
  const ours = signFingerprint(key, narInfoFingerprint(unsigned));
  const others = info.sigs.filter((sig) => !sig.startsWith(`${key.name}:`));
  return { ...unsigned, sigs: [ours, ...others] };
}
