import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';

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

/** ed25519 sizes (RFC 8032): a Nix secret key is the 32-byte seed followed by the public key. */
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SECRET_KEY_BYTES = 64;
const ED25519_SIGNATURE_BYTES = 64;

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
  if (bytes.length === ED25519_PUBLIC_KEY_BYTES) {
    throw new Error(`'${name}' is a public key; a secret signing key is needed (cachix generate-keypair makes one)`);
  }
  if (bytes.length !== ED25519_SECRET_KEY_BYTES) {
    throw new Error(`the signing key '${name}' has ${bytes.length} bytes, expected ${ED25519_SECRET_KEY_BYTES}; is it truncated?`);
  }
  const secretKey = Uint8Array.from(bytes);
  // The second half of a Nix secret key is its public key; a key whose halves disagree is corrupt.
  const derived = publicKeyFromSeed(secretKey.subarray(0, 32));
  if (!Buffer.from(derived).equals(Buffer.from(secretKey.subarray(32)))) {
    throw new Error(`the signing key '${name}' is corrupt (its public half does not match its seed)`);
  }
  return { name, secretKey };
}

export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKey(text, 'public key');
  if (bytes.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new Error(`the public key '${name}' has ${bytes.length} bytes, expected ${ED25519_PUBLIC_KEY_BYTES}`);
  }
  return { name, key: Uint8Array.from(bytes) };
}

export function generateSigningKey(name: string): SigningKey {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`'${name}' is not a valid key name (letters, digits, . _ -)`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  const publicBytes = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  return { name, secretKey: Uint8Array.from(Buffer.concat([seed, publicBytes])) };
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

// DER wrappers that turn raw ed25519 key bytes into keys OpenSSL takes (RFC 8410).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Signing runs once per pushed path: the key becomes an OpenSSL KeyObject once. */
const nativePrivateKeys = new WeakMap<SigningKey, KeyObject>();

function nativePrivateKey(key: SigningKey): KeyObject {
  let native = nativePrivateKeys.get(key);
  if (!native) {
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, key.secretKey.subarray(0, 32)]);
    native = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    nativePrivateKeys.set(key, native);
  }
  return native;
}

/** The public key of an ed25519 seed. */
function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return Uint8Array.from(spki.subarray(SPKI_ED25519_PREFIX.length));
}

/** A narinfo `Sig:` value: `<keyname>:<base64 detached ed25519 signature of the fingerprint>`. */
export function signFingerprint(key: SigningKey, fingerprint: string): string {
  const signature = nodeSign(null, Buffer.from(fingerprint, 'utf8'), nativePrivateKey(key));
  return `${key.name}:${signature.toString('base64')}`;
}

const nativePublicKeys = new WeakMap<PublicKey, KeyObject>();

/** Made once per key: building a KeyObject costs more than the verification itself. */
function nativePublicKey(key: PublicKey): KeyObject {
  let native = nativePublicKeys.get(key);
  if (!native) {
    native = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, key.key]), format: 'der', type: 'spki' });
    nativePublicKeys.set(key, native);
  }
  return native;
}

/** A `Sig:` value's signature bytes and the keys of the name it gives, or undefined when malformed. */
function signatureAndKeys(sig: string, keys: readonly PublicKey[]): { signature: Buffer; candidates: PublicKey[] } | undefined {
  const colon = sig.indexOf(':');
  if (colon <= 0) return undefined;
  const name = sig.slice(0, colon);
  const signature = Buffer.from(sig.slice(colon + 1), 'base64');
  if (signature.length !== ED25519_SIGNATURE_BYTES) return undefined;
  return { signature, candidates: keys.filter((key) => key.name === name) };
}

export function verifySignature(sig: string, fingerprint: string, keys: readonly PublicKey[]): boolean {
  const parsed = signatureAndKeys(sig, keys);
  if (!parsed) return false;
  const message = Buffer.from(fingerprint, 'utf8');
  return parsed.candidates.some((key) => nodeVerify(null, message, nativePublicKey(key), parsed.signature));
}
