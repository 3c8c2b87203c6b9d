import { describe, expect, it } from 'vitest';
import { formatBareSecretKey, namedKey, parseSecretKeyText, publicKeyBase64 } from '../../src/nix/secret-key-formats.js';
import { formatSigningKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';

const key = generateSigningKey('demo.cachix.org-1');
const bare = formatBareSecretKey(key);

describe("secret keys in Nix's and cachix's formats", () => {
  it("reads Nix's name:base64 with its name", () => {
    const parsed = parseSecretKeyText(formatSigningKey(key));
    expect(parsed.format).toBe('nix');
    expect(namedKey(parsed, 'ignored')).toEqual(key);
  });

  it("reads cachix's bare base64 (as generate-keypair prints it), with or without padding and surrounding whitespace", () => {
    for (const text of [bare, `  ${bare}\n`, bare.replace(/=+$/, '')]) {
      const parsed = parseSecretKeyText(text);
      expect(parsed.format).toBe('bare');
      expect(namedKey(parsed, 'demo.cachix.org-1')).toEqual(key);
      expect(publicKeyBase64(parsed)).toBe(Buffer.from(publicKeyOf(key).key).toString('base64'));
    }
  });

  it('refuses what cachix would sign garbage with: empty, a public key, a 32-byte seed, a corrupt public half, not base64', () => {
    const publicOnly = Buffer.from(publicKeyOf(key).key).toString('base64');
    const seed = Buffer.from(key.secretKey.subarray(0, 32)).toString('base64');
    const corrupt = Buffer.from([...key.secretKey.subarray(0, 63), key.secretKey[63]! ^ 1]).toString('base64');
    expect(() => parseSecretKeyText(' \n')).toThrow('the signing key is empty');
    expect(() => parseSecretKeyText(publicOnly)).toThrow(/this is 32 bytes, a public key \(or a bare seed\)/);
    expect(() => parseSecretKeyText(seed)).toThrow(/this is 32 bytes, a public key \(or a bare seed\)/);
    expect(() => parseSecretKeyText(bare.slice(0, 60))).toThrow('the signing key has 45 bytes, expected 64; is it truncated?');
    expect(() => parseSecretKeyText(corrupt)).toThrow('the signing key is corrupt (its public half does not match its seed)');
    expect(() => parseSecretKeyText('not base64!')).toThrow(/neither name:base64 \(Nix\) nor base64 \(cachix\)/);
  });
});
