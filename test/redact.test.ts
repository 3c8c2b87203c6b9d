import { describe, expect, it } from 'vitest';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../src/nix/signing.js';
import { redactSecrets, registerSecret } from '../src/redact.js';

describe('redactSecrets', () => {
  it('cuts Nix secret keys, keeping the key name, and leaves public keys alone', () => {
    const key = generateSigningKey('mine-1');
    const secret = formatSigningKey(key);
    const publicKey = formatPublicKey(publicKeyOf(key));
    const out = redactSecrets(`signing with ${secret}; trusted ${publicKey}`);
    expect(out).toBe(`signing with mine-1:<redacted secret key>; trusted ${publicKey}`);
    expect(out).not.toContain(secret.slice(7, 40));
  });

  it('cuts bearer tokens in any case', () => {
    expect(redactSecrets('Authorization: Bearer eyJhbGciOi.J9.abc')).toBe('Authorization: Bearer <redacted>');
    expect(redactSecrets('authorization: bearer abc123def')).toBe('authorization: bearer <redacted>');
    expect(redactSecrets('{"authorization":"Bearer tok123"}')).toBe('{"authorization":"Bearer <redacted>"}');
  });

  it('cuts passwords in URLs and keeps the user and host', () => {
    expect(redactSecrets('fetching https://alice:s3cr3t@cache.example.org/nix-cache-info failed')).toBe(
      'fetching https://alice:<redacted>@cache.example.org/nix-cache-info failed',
    );
    expect(redactSecrets('s3://KEY:SECRET@bucket/x')).toBe('s3://KEY:<redacted>@bucket/x');
    // A port is not a password.
    expect(redactSecrets('http://127.0.0.1:8080/x')).toBe('http://127.0.0.1:8080/x');
  });

  it('cuts token, secret, password and signature query parameters', () => {
    expect(redactSecrets('https://x/y?token=abc&b=1')).toBe('https://x/y?token=<redacted>&b=1');
    expect(redactSecrets('?X-Amz-Signature=deadbeef&X-Amz-Date=1')).toBe('?X-Amz-Signature=<redacted>&X-Amz-Date=1');
    expect(redactSecrets('password=hunter22 secret=xyz')).toBe('password=<redacted> secret=<redacted>');
  });

  it('cuts registered secrets wherever they appear, but not short strings that would cut ordinary words', () => {
    registerSecret('an-opaque-api-token-0123456789');
    registerSecret('short');
    registerSecret(undefined);
    expect(redactSecrets('error: token an-opaque-api-token-0123456789 rejected (short)')).toBe('error: token <redacted> rejected (short)');
    expect(redactSecrets('x an-opaque-api-token-0123456789an-opaque-api-token-0123456789 y')).toBe('x <redacted><redacted> y');
  });

  it('leaves text without secrets unchanged', () => {
    const text = 'pushed 3 paths (1.2 MiB) to file:///srv/cache, skipped 0\n/nix/store/mizigj3slh3lrwavdpyp7ixpqy1n63fj-hello';
    expect(redactSecrets(text)).toBe(text);
  });
});
