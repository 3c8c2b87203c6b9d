import nacl from 'tweetnacl';

/**
 * Keys in Nix's own format, interchangeable with `nix-store --generate-binary-cache-key`:
 * `<name>:<base64>`, a 64-byte ed25519 secret key (seed + public key) or a 32-byte public key.
 */
export interface SigningKey {
  name: string;
  secretKey: Uint8Array;
}

export interface PublicKey {
  name: string;
  key: Uint8Array;
}

function splitKey(text: string, what: string): { name: string; bytes: Buffer } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon <= 0) throw new Error(`the ${what} is not in Nix's <name>:<base64> format`);
  const name = trimmed.slice(0, colon);
  const body = trimmed.slice(colon + 1);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error(`the ${what} '${name}' is not valid base64`);
  return { name, bytes: Buffer.from(body, 'base64') };
}

export function parseSigningKey(text: string): SigningKey {
  const { name, bytes } = splitKey(text, 'signing key');
  if (bytes.length === nacl.sign.publicKeyLength) {
    throw new Error(`'${name}' is a public key; a secret signing key is needed (cachix generate-keypair makes one)`);
  }
  if (bytes.length !== nacl.sign.secretKeyLength) {
    throw new Error(`the signing key '${name}' has ${bytes.length} bytes, expected ${nacl.sign.secretKeyLength}; is it truncated?`);
  }
  const secretKey = Uint8Array.from(bytes);
  // The second half of a Nix secret key is its public key; a key whose halves disagree is corrupt.
  const derived = nacl.sign.keyPair.fromSeed(secretKey.subarray(0, 32)).publicKey;
  if (!Buffer.from(derived).equals(Buffer.from(secretKey.subarray(32)))) {
    throw new Error(`the signing key '${name}' is corrupt (its public half does not match its seed)`);
  }
  return { name, secretKey };
}

export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKey(text, 'public key');
  if (bytes.length !== nacl.sign.publicKeyLength) {
    throw new Error(`the public key '${name}' has ${bytes.length} bytes, expected ${nacl.sign.publicKeyLength}`);
  }
  return { name, key: Uint8Array.from(bytes) };
}

export function generateSigningKey(name: string): SigningKey {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`'${name}' is not a valid key name (letters, digits, . _ -)`);
  return { name, secretKey: nacl.sign.keyPair().secretKey };
}

export function formatSigningKey(key: SigningKey): string {
  return `${key.name}:${Buffer.from(key.secretKey).toString('base64')}`;
}

export function publicKeyOf(key: SigningKey): PublicKey {
  return { name: key.name, key: key.secretKey.slice(32) };
}

export function formatPublicKey(key: PublicKey): string {
  return `${key.name}:${Buffer.from(key.key).toString('base64')}`;
}

/** A narinfo `Sig:` value: `<keyname>:<base64 detached ed25519 signature of the fingerprint>`. */
export function signFingerprint(key: SigningKey, fingerprint: string): string {
  const signature = nacl.sign.detached(Buffer.from(fingerprint, 'utf8'), key.secretKey);
  return `${key.name}:${Buffer.from(signature).toString('base64')}`;
}

export function verifySignature(sig: string, fingerprint: string, keys: readonly PublicKey[]): boolean {
  const colon = sig.indexOf(':');
  if (colon <= 0) return false;
  const name = sig.slice(0, colon);
  const signature = Buffer.from(sig.slice(colon + 1), 'base64');
  if (signature.length !== nacl.sign.signatureLength) return false;
  return keys.some((key) => key.name === name && nacl.sign.detached.verify(Buffer.from(fingerprint, 'utf8'), signature, key.key));
}
