// Re-signing narinfos in place for a key rotation: add the current key's signature where it is
// missing, drop a retired key's. A narinfo is re-signed only when a signature by one of the
// cache's own keys (current or retired) already verifies, so `sign` never launders a narinfo
// someone else wrote or changed. Only Sig lines change; every other line stays as the server had it.
import { narInfoFingerprint, parseNarInfo } from '../nix/narinfo.js';
import { signFingerprint, verifySignature, type PublicKey, type SigningKey } from '../nix/signing.js';

export interface ResignPlan {
  key: SigningKey;
  /** Keys whose valid signature makes a narinfo ours to re-sign: the current and the retired. */
  trusted: readonly PublicKey[];
  /** A key name whose signatures are removed (`sign --drop NAME-1`). */
  drop?: string | undefined;
}

export type ResignOutcome = 'signed' | 'dropped' | 'unchanged' | 'untrusted';

const sigName = (line: string): string => line.slice('Sig: '.length, line.indexOf(':', 'Sig: '.length));

/** The narinfo's new text, or undefined when it needs no change or is not ours to sign. */
export function resignNarInfo(text: string, plan: ResignPlan, storeDir: string): { text?: string; outcome: ResignOutcome } {
  const info = parseNarInfo(text, storeDir);
  const fingerprint = narInfoFingerprint(info);
  if (!info.sigs.some((sig) => verifySignature(sig, fingerprint, plan.trusted))) return { outcome: 'untrusted' };
  const ownValid = info.sigs.some((sig) => sig.startsWith(`${plan.key.name}:`) && verifySignature(sig, fingerprint, plan.trusted));
  const lines = text.split('\n');
  const kept = lines.filter((line) => {
    if (!line.startsWith('Sig: ')) return true;
    const name = sigName(line);
    if (name === plan.drop) return false;
    // An invalid signature under our current key's name is replaced, not kept beside ours.
    return name !== plan.key.name || ownValid;
  });
  const dropped = kept.length !== lines.length;
  if (ownValid && !dropped) return { outcome: 'unchanged' };
  if (!ownValid) {
    const sig = `Sig: ${signFingerprint(plan.key, fingerprint)}`;
    // Nix writes Sig lines after System and before CA.
    const lastSig = kept.map((line) => line.startsWith('Sig: ')).lastIndexOf(true);
    const ca = kept.findIndex((line) => line.startsWith('CA: '));
    const at = lastSig >= 0 ? lastSig + 1 : ca >= 0 ? ca : kept[kept.length - 1] === '' ? kept.length - 1 : kept.length;
    kept.splice(at, 0, sig);
  }
  return { text: kept.join('\n'), outcome: ownValid ? 'dropped' : 'signed' };
}
