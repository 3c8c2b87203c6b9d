import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatHashBase32, formatHashSri, hashesEqual, parseHash, sha256Hash } from '../../src/nix/hash.js';
import { buildWithNix, NIX_FEATURES, requireNix, run } from '../helpers/nix.js';
import { DIGEST_SAMPLES, NIX_DIGESTS } from '../helpers/digests.js';

function lines(text: string): string[] {
  return text.trim().split('\n');
}

describe('hashes in every form Nix prints', () => {
  requireNix();

  for (const { type, bytes } of NIX_DIGESTS) {
    it(`parses ${DIGEST_SAMPLES} ${type} hashes as Nix prints them (base16, base32, SRI) to the same digest, and formats them as Nix does`, async () => {
      const digests = Array.from({ length: DIGEST_SAMPLES }, () => randomBytes(bytes));
      const hexes = digests.map((digest) => digest.toString('hex'));
      const base32 = lines(await run('nix-hash', ['--type', type, '--to-base32', ...hexes]));
      const sri = lines(await run('nix', [...NIX_FEATURES, 'hash', 'to-sri', '--type', type, ...hexes]));
      expect(sri).toHaveLength(DIGEST_SAMPLES);
      digests.forEach((digest, index) => {
        const expected = { algorithm: type, digest: Uint8Array.from(digest) };
        const fromBase16 = parseHash(`${type}:${hexes[index]}`);
        const fromBase32 = parseHash(`${type}:${base32[index]}`);
        const fromSri = parseHash(sri[index]!);
        for (const parsed of [fromBase16, fromBase32, fromSri]) {
          expect(parsed).toEqual(expected);
          expect(hashesEqual(parsed, fromBase16)).toBe(true);
        }
        expect(formatHashBase32(fromSri)).toBe(`${type}:${base32[index]}`);
        expect(formatHashSri(fromBase32)).toBe(sri[index]);
      });
    });
  }

  it('reads the NarHash of a real store path from nix-store -q --hash and nix path-info --json alike', async () => {
    const storePath = await buildWithNix('hash-test', 'echo hash-test > $out');
    const fromQuery = parseHash((await run('nix-store', ['-q', '--hash', storePath])).trim());
    const json = JSON.parse(await run('nix', [...NIX_FEATURES, 'path-info', '--json', storePath])) as Array<{ narHash: string }>;
    expect(fromQuery.algorithm).toBe('sha256');
    expect(hashesEqual(fromQuery, parseHash(json[0]!.narHash))).toBe(true);
  });

  const zeros = sha256Hash(new Uint8Array(32));
  const invalid: Array<[string, RegExp]> = [
    ['', /is not a hash/],
    ['sha256', /is not a hash/],
    ['sha256:', /is not a hash/],
    ['blake2:' + '0'.repeat(64), /unknown hash algorithm 'blake2'/],
    ['sha256:' + '0'.repeat(63), /not a valid sha256 hash/],
    ['sha256:' + 'g'.repeat(64), /not a valid sha256 hash/],
    ['sha256:e' + formatHashBase32(zeros).slice('sha256:'.length + 1), /invalid character 'e'/],
    ['sha256:' + '0'.repeat(51), /not a valid sha256 hash/],
    ['sha256:2' + '0'.repeat(51), /bits beyond its length/],
    ['sha256-' + Buffer.alloc(31).toString('base64'), /not a valid sha256 hash/],
    ['sha256-' + Buffer.alloc(33).toString('base64'), /not a valid sha256 hash/],
    // A non-canonical base64 tail: the same bytes, a second spelling.
    ['sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=', /not a valid sha256 hash/],
    ['md5-' + Buffer.alloc(32).toString('base64'), /not a valid md5 hash/],
  ];
  for (const [text, message] of invalid) {
    it(`rejects '${text}'`, () => {
      expect(() => parseHash(text)).toThrow(message);
    });
  }

  it('compares algorithm and digest', () => {
    const other = sha256Hash(Uint8Array.from({ length: 32 }, (_, index) => index));
    expect(hashesEqual(zeros, sha256Hash(new Uint8Array(32)))).toBe(true);
    expect(hashesEqual(zeros, other)).toBe(false);
    expect(hashesEqual(zeros, { algorithm: 'sha512', digest: new Uint8Array(32) })).toBe(false);
  });
});
