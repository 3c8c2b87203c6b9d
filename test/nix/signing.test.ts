import { describe, expect, it } from 'vitest';
import {
  formatPublicKey,
  formatSigningKey,
  generateSigningKey,
  parsePublicKey,
  parseSigningKey,
  publicKeyOf,
  signFingerprint,
  verifySignature,
} from '../../src/nix/signing.js';

// A key whose base64 holds '+' or '/', so its base64url spelling really differs (about 1 random
// key in 15 has neither, and then base64url without padding is just valid unpadded base64).
const key = ((): ReturnType<typeof generateSigningKey> => {
  for (;;) {
    const candidate = generateSigningKey('test-1');
    if (/[+/]/.test(formatSigningKey(candidate))) return candidate;
  }
})();
const secretText = formatSigningKey(key);
const publicText = formatPublicKey(publicKeyOf(key));
const body = (text: string): Buffer => Buffer.from(text.slice(text.indexOf(':') + 1), 'base64');

describe('Nix-format signing keys', () => {
  it('round-trips a generated key in the shape nix-store --generate-binary-cache-key writes', () => {
    expect(secretText).toMatch(/^test-1:[A-Za-z0-9+/]{86}==$/);
    expect(publicText).toMatch(/^test-1:[A-Za-z0-9+/]{43}=$/);
    expect(parseSigningKey(secretText)).toEqual(key);
    expect(parseSigningKey(`  ${secretText}\n`)).toEqual(key);
    expect(formatPublicKey(parsePublicKey(publicText))).toBe(publicText);
  });

  it('says so when a public key is given where a secret key is needed', () => {
    expect(() => parseSigningKey(publicText)).toThrow("'test-1' is a public key; a secret signing key is needed");
  });

  it('rejects a truncated secret key, saying how many bytes it has', () => {
    const truncated = `test-1:${body(secretText).subarray(0, 48).toString('base64')}`;
    expect(() => parseSigningKey(truncated)).toThrow("the signing key 'test-1' has 48 bytes, expected 64; is it truncated?");
    expect(() => parseSigningKey(secretText.slice(0, 40))).toThrow(/not valid base64|has \d+ bytes/);
  });

  it('rejects a corrupt key whose public half does not match its seed', () => {
    const bytes = body(secretText);
    bytes[40] = bytes[40]! ^ 0x01;
    expect(() => parseSigningKey(`test-1:${bytes.toString('base64')}`)).toThrow(
      "the signing key 'test-1' is corrupt (its public half does not match its seed)",
    );
    const other = body(formatSigningKey(generateSigningKey('x')));
    const mixed = Buffer.concat([body(secretText).subarray(0, 32), other.subarray(32)]);
    expect(() => parseSigningKey(`test-1:${mixed.toString('base64')}`)).toThrow(/is corrupt/);
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['an empty string', '', /not in Nix's <name>:<base64> format/],
    ['no name', `:${body(secretText).toString('base64')}`, /not in Nix's <name>:<base64> format/],
    ['no colon', body(secretText).toString('base64'), /not in Nix's <name>:<base64> format/],
    ['characters outside base64', 'test-1:abc!def', /'test-1' is not valid base64/],
    ['an empty body', 'test-1:', /'test-1' is not valid base64/],
    ['too much padding', `test-1:${body(secretText).toString('base64')}=`, /not valid base64/],
    ['base64url instead of base64', 'test-1:' + body(secretText).toString('base64url'), /not valid base64|has \d+ bytes|corrupt/],
  ];
  for (const [why, text, message] of malformed) {
    it(`rejects a secret key with ${why}`, () => {
      expect(() => parseSigningKey(text)).toThrow(message);
    });
  }

  it('accepts unpadded base64, as Nix does (its decoder stops at the first =)', () => {
    expect(parseSigningKey(secretText.replace(/=+$/, ''))).toEqual(key);
  });

  it('rejects a public key of the wrong length, and a secret key where a public key is needed', () => {
    expect(() => parsePublicKey(secretText)).toThrow("the public key 'test-1' has 64 bytes, expected 32");
    expect(() => parsePublicKey('test-1:AAAA')).toThrow("the public key 'test-1' has 3 bytes, expected 32");
    expect(() => parsePublicKey('nocolon')).toThrow(/<name>:<base64>/);
  });

  it('refuses key names Nix could not read back', () => {
    expect(() => generateSigningKey('has:colon')).toThrow(/not a valid key name/);
    expect(() => generateSigningKey('')).toThrow(/not a valid key name/);
    expect(() => generateSigningKey('with space')).toThrow(/not a valid key name/);
  });

  it('signs and verifies; rejects malformed signatures without throwing', () => {
    const fingerprint =
      '1;/nix/store/mizigj3slh3lrwavdpyp7ixpqy1n63fj-hello;sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h;120;';
    const sig = signFingerprint(key, fingerprint);
    expect(sig).toMatch(/^test-1:[A-Za-z0-9+/]{86}==$/);
    const publicKey = publicKeyOf(key);
    expect(verifySignature(sig, fingerprint, [publicKey])).toBe(true);
    expect(verifySignature(sig, `${fingerprint}x`, [publicKey])).toBe(false);
    expect(verifySignature(sig, fingerprint, [])).toBe(false);
    expect(verifySignature(sig, fingerprint, [publicKeyOf(generateSigningKey('test-1'))])).toBe(false);
    for (const bad of ['', 'test-1', ':abc', 'test-1:', 'test-1:AAAA', `test-1:${'A'.repeat(200)}`, sig.slice(0, -4)]) {
      expect(verifySignature(bad, fingerprint, [publicKey]), bad).toBe(false);
    }
  });
});
