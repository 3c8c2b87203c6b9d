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
      return { algorithm, digest: Uint8Array.from(Buffer.from(body, 'hex')) };
    }
    if (body.length === base32EncodedLength(size)) {
      return { algorithm, digest: decodeBase32(body, size) };
    }
  }
  const digest = Buffer.from(body, 'base64');
  if (digest.length !== size || Buffer.from(digest).toString('base64') !== body) {
    throw new Error(`'${text}' is not a valid ${algorithm} hash`);
  }
  return { algorithm, digest: Uint8Array.from(digest) };
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
