// The two ways a secret signing key is written down: Nix's `name:base64` (nix-store
// --generate-binary-cache-key, our config) and cachix's bare base64 (`cachix generate-keypair`,
// CACHIX_SIGNING_KEY, cachix.dhall's secretKey). Both hold the same 64 bytes: the ed25519 seed
// followed by its public key.
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SECRET_KEY_BYTES, parseSigningKey, type SigningKey } from './signing.js';

/** A secret key as read: Nix's format carries its name; cachix's bare one does not. */
export type SecretKeyText = { format: 'nix'; key: SigningKey } | { format: 'bare'; secretKey: Uint8Array };

/**
 * cachix's Secrets.hs strips surrounding whitespace, refuses an empty key and then decodes
 * leniently (padding optional) without checking the length; its ed25519 signer then needs exactly
 * 64 bytes. We take what it takes and check the length and the halves here, where the error can
 * still say which key is wrong.
 */
export function parseSecretKeyText(text: string): SecretKeyText {
  const trimmed = text.trim();
  if (trimmed === '') throw new Error('the signing key is empty');
  if (trimmed.includes(':')) return { format: 'nix', key: parseSigningKey(trimmed) };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) throw new Error('the signing key is neither name:base64 (Nix) nor base64 (cachix)');
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length === ED25519_PUBLIC_KEY_BYTES) {
    throw new Error(
      'this is 32 bytes, a public key (or a bare seed); a secret signing key of 64 bytes is needed (cachix generate-keypair makes one)',
    );
  }
  if (bytes.length !== ED25519_SECRET_KEY_BYTES) {
    throw new Error(`the signing key has ${bytes.length} bytes, expected ${ED25519_SECRET_KEY_BYTES}; is it truncated?`);
  }
  try {
    // The same checks as for a Nix-format key (the public half must match the seed).
    return { format: 'bare', secretKey: parseSigningKey(`bare:${bytes.toString('base64')}`).secretKey };
  } catch {
    throw new Error('the signing key is corrupt (its public half does not match its seed)');
  }
}

/** The public half of a parsed key, as base64 (what a cache publishes after its key name). */
export function publicKeyBase64(parsed: SecretKeyText): string {
  const secret = parsed.format === 'nix' ? parsed.key.secretKey : parsed.secretKey;
  return Buffer.from(secret.subarray(32)).toString('base64');
}

/** Gives a bare key a name; a Nix-format key keeps its own. */
export function namedKey(parsed: SecretKeyText, name: string): SigningKey {
  return parsed.format === 'nix' ? parsed.key : { name, secretKey: parsed.secretKey };
}

/** cachix's format: the 64 bytes as bare base64, as `cachix generate-keypair` prints them. */
export function formatBareSecretKey(key: SigningKey): string {
  return Buffer.from(key.secretKey).toString('base64');
}
