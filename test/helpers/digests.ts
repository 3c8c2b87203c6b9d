/** The digest types Nix knows, with their lengths: what the hash and base32 tests sweep. */
export const NIX_DIGESTS = [
  { type: 'md5', bytes: 16 },
  { type: 'sha1', bytes: 20 },
  { type: 'sha256', bytes: 32 },
  { type: 'sha512', bytes: 64 },
] as const;

/** Random digests per type checked against real Nix in one nix-hash call. */
export const DIGEST_SAMPLES = 200;
