import { decodeBase32, encodeBase32, base32EncodedLength } from './base32.js';

/** The hash algorithms Nix writes in narinfos; we only ever produce sha256. */
const DIGEST_LENGTH = { md5: 16, sha1: 20, sha256: 32, sha512: 64 } as const;
export type HashAlgorithm = keyof typeof DIGEST_LENGTH;

export interface Hash {
  algorithm: HashAlgorithm;
  digest: Uint8Array;
}

function isAlgorithm(name: string): name is HashAlgorithm {
  return Object.hasOwn(DIGEST_LENGTH, name);
}

/**
 * Parses the forms Nix prints: `sha256:<base32>` (narinfos, Nix 2.8 JSON), `sha256:<base16>`,
 * `sha256:<base64>`, and SRI `sha256-<base64>` (newer Nix JSON). The encoding is told by length,
 * as Nix does.
 */
export function parseHash(text: string): Hash {
  // The form Nix 2.8's path-info JSON prints for every path: a push of ten thousand paths reads
  // that many, so it skips the general parse below (and its copies).
  if (text.length === SRI_SHA256_LENGTH && text.startsWith('sha256-')) {
    const digest = decodeSriSha256(text);
    if (digest) return { algorithm: 'sha256', digest };
  }
  const sri = /^([a-z0-9]+)-([A-Za-z0-9+/=]+)$/.exec(text);
  const colon = /^([a-z0-9]+):(.+)$/.exec(text);
  const match = sri ?? colon;
  if (!match) throw new Error(`'${text}' is not a hash (expected sha256:<base32> or sha256-<base64>)`);
  const algorithm = match[1]!;
  const body = match[2]!;
  if (!isAlgorithm(algorithm)) throw new Error(`unknown hash algorithm '${algorithm}' in '${text}'`);
  const size = DIGEST_LENGTH[algorithm];
  if (!sri) {
    if (body.length === size * 2 && /^[0-9a-f]+$/.test(body)) {
      return { algorithm, digest: copyOf(Buffer.from(body, 'hex')) };
    }
    if (body.length === base32EncodedLength(size)) {
      return { algorithm, digest: decodeBase32(body, size) };
    }
  }
  const digest = Buffer.from(body, 'base64');
  if (digest.length !== size || Buffer.from(digest).toString('base64') !== body) {
    throw new Error(`'${text}' is not a valid ${algorithm} hash`);
  }
  return { algorithm, digest: copyOf(digest) };
}

/** A Uint8Array of its own (Buffer.from may hand out a slice of a shared pool). */
function copyOf(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

const SRI_SHA256_LENGTH = 'sha256-'.length + 44;
const BASE64_VALUE = new Int8Array(128).fill(-1);
for (const [value, digit] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  BASE64_VALUE[digit.charCodeAt(0)] = value;
}

/**
 * `sha256-<base64>` decoded in place into its own 32 bytes (no Buffer, no copies), or undefined
 * when it is not canonical base64: then the general parse says what is wrong.
 */
function decodeSriSha256(text: string): Uint8Array | undefined {
  const digest = new Uint8Array(32);
  let bits = 0;
  let bitCount = 0;
  let written = 0;
  for (let index = 'sha256-'.length; index < text.length - 1; index++) {
    const code = text.charCodeAt(index);
    const value = code < 128 ? BASE64_VALUE[code]! : -1;
    if (value < 0) return undefined;
    bits = ((bits << 6) | value) & 0xffff;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      digest[written++] = (bits >> bitCount) & 0xff;
    }
  }
  // 43 digits carry 258 bits: the 2 left over must be zero, and one '=' pads to 44.
  if (written !== 32 || (bits & 3) !== 0 || text.charCodeAt(text.length - 1) !== 61) return undefined;
  return digest;
}

/** The form narinfos and fingerprints use: `sha256:<nix base32>`. */
export function formatHashBase32(hash: Hash): string {
  return `${hash.algorithm}:${encodeBase32(hash.digest)}`;
}

export function formatHashSri(hash: Hash): string {
  return `${hash.algorithm}-${Buffer.from(hash.digest).toString('base64')}`;
}

export function sha256Hash(digest: Uint8Array): Hash {
  return { algorithm: 'sha256', digest };
}

export function hashesEqual(a: Hash, b: Hash): boolean {
  return a.algorithm === b.algorithm && Buffer.from(a.digest).equals(Buffer.from(b.digest));
}
