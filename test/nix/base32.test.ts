import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base32EncodedLength, decodeBase32, encodeBase32, isBase32, NIX_BASE32_ALPHABET } from '../../src/nix/base32.js';
import { requireNix, run } from '../helpers/nix.js';
import { DIGEST_SAMPLES, NIX_DIGESTS } from '../helpers/digests.js';

/** Nix's verdict on one base32 string: its hex, or the error it printed. */
async function nixBase16(type: string, base32: string): Promise<{ ok: true; hex: string } | { ok: false; error: string }> {
  try {
    return { ok: true, hex: (await run('nix-hash', ['--type', type, '--to-base16', base32])).trim() };
  } catch (error) {
    return { ok: false, error: String((error as { stderr?: string }).stderr) };
  }
}

describe('Nix base32 against real nix-hash', () => {
  requireNix();

  for (const { type, bytes } of NIX_DIGESTS) {
    it(`encodes ${DIGEST_SAMPLES} random ${type} digests exactly as nix-hash --to-base32 does, and decodes them back`, async () => {
      // Edge digests first: all zero, all ones, a single low bit, a single high bit.
      const single = (index: number, value: number): Buffer => {
        const digest = Buffer.alloc(bytes);
        digest[index] = value;
        return digest;
      };
      const digests = [Buffer.alloc(bytes), Buffer.alloc(bytes, 0xff), single(0, 1), single(bytes - 1, 0x80)];
      while (digests.length < DIGEST_SAMPLES) digests.push(randomBytes(bytes));
      const hexes = digests.map((digest) => digest.toString('hex'));
      const nixBase32 = (await run('nix-hash', ['--type', type, '--to-base32', ...hexes])).trim().split('\n');
      expect(nixBase32).toHaveLength(DIGEST_SAMPLES);
      digests.forEach((digest, index) => {
        const ours = encodeBase32(digest);
        expect(ours, `digest ${hexes[index]}`).toBe(nixBase32[index]);
        expect(ours).toHaveLength(base32EncodedLength(bytes));
        expect(Buffer.from(decodeBase32(nixBase32[index]!, bytes)).toString('hex')).toBe(hexes[index]);
      });
      // And the other way: Nix decodes what we encode to the same bytes.
      const back = (await run('nix-hash', ['--type', type, '--to-base16', ...digests.map((digest) => encodeBase32(digest))]))
        .trim()
        .split('\n');
      expect(back).toEqual(hexes);
    });
  }

  it('has the lengths Nix prints: 26, 32, 52 and 103 characters', () => {
    expect(NIX_DIGESTS.map(({ bytes }) => base32EncodedLength(bytes))).toEqual([26, 32, 52, 103]);
    // A store path hash part is 20 bytes: 32 characters.
    expect(base32EncodedLength(20)).toBe(32);
  });

  it('uses Nix alphabet, without e, o, u and t', () => {
    expect(NIX_BASE32_ALPHABET).toHaveLength(32);
    for (const letter of 'eout') expect(NIX_BASE32_ALPHABET).not.toContain(letter);
    expect(isBase32('0123456789abcdfghijklmnpqrsvwxyz')).toBe(true);
    for (const bad of ['e', 'o', 'u', 't', 'A', '-', ' ', '=']) expect(isBase32(`00${bad}`), bad).toBe(false);
  });

  const valid = encodeBase32(Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex'));

  const invalid: Array<{ why: string; text: string; message: RegExp }> = [
    ...['e', 'o', 'u', 't', 'E', '_'].map((char) => ({
      why: `the character '${char}'`,
      text: char + valid.slice(1),
      message: new RegExp(`invalid character '${char}'`),
    })),
    { why: 'one character too few', text: valid.slice(1), message: /has 51 characters, expected 52/ },
    { why: 'one character too many', text: `0${valid}`, message: /has 53 characters, expected 52/ },
    // 52 digits hold 260 bits; a sha256 has 256, so the first digit may only be 0 or 1.
    { why: 'bits beyond the digest (first digit 2)', text: `2${valid.slice(1)}`, message: /bits beyond its length/ },
    { why: 'bits beyond the digest (first digit z)', text: `z${valid.slice(1)}`, message: /bits beyond its length/ },
  ];

  for (const { why, text, message } of invalid) {
    it(`rejects a sha256 base32 string with ${why}, as Nix does`, async () => {
      expect(() => decodeBase32(text, 32)).toThrow(message);
      const nix = await nixBase16('sha256', text);
      expect(nix.ok, `nix-hash accepted ${text}`).toBe(false);
    });
  }

  it('accepts exactly what Nix accepts at the top digit for every digest length', async () => {
    for (const { type, bytes } of NIX_DIGESTS) {
      const length = base32EncodedLength(bytes);
      const spareBits = length * 5 - bytes * 8;
      const rest = '0'.repeat(length - 1);
      for (const top of ['1', 'z']) {
        const text = top + rest;
        const digit = NIX_BASE32_ALPHABET.indexOf(top);
        const fits = digit >> (5 - spareBits) === 0;
        const nix = await nixBase16(type, text);
        expect(nix.ok, `${type} ${text}`).toBe(fits);
        if (fits) {
          expect(Buffer.from(decodeBase32(text, bytes)).toString('hex')).toBe((nix as { hex: string }).hex);
        } else {
          expect(() => decodeBase32(text, bytes)).toThrow(/bits beyond its length/);
        }
      }
    }
  });
});
