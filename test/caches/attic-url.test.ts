import { describe, expect, it } from 'vitest';
import { parseAtticUrl, uploadInfoOf } from '../../src/caches/attic.js';
import { parseHash } from '../../src/nix/hash.js';

describe('attic cache URLs', () => {
  it('split into the API endpoint, the cache and the server a token is kept for', () => {
    expect(parseAtticUrl(new URL('attic+https://attic.example.com/main'))).toEqual({
      endpoint: 'https://attic.example.com/',
      cache: 'main',
      server: 'attic.example.com',
    });
    expect(parseAtticUrl(new URL('attic+http://Cache.Example.com:8080/attic/team-ci/'))).toEqual({
      endpoint: 'http://Cache.Example.com:8080/attic/',
      cache: 'team-ci',
      server: 'cache.example.com:8080',
    });
  });

  it('refuse what names no attic cache, and credentials in the URL', () => {
    for (const text of [
      'attic+https://attic.example.com/',
      'attic+https://attic.example.com/bad.name',
      'attic+https://user:secret@attic.example.com/main',
      'attic+https://attic.example.com/main?token=x',
    ]) {
      expect(() => parseAtticUrl(new URL(text)), text).toThrow(/does not name an attic cache/);
    }
  });

  it('send nar_hash as sha256 hex and references as base names, as attic expects', () => {
    const narHash = parseHash('sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s');
    const info = uploadInfoOf('main', {
      storePath: '/nix/store/00000000000000000000000000000000-top',
      narHash,
      narSize: 120,
      references: ['/nix/store/11111111111111111111111111111111-lib'],
      deriver: '/nix/store/22222222222222222222222222222222-top.drv',
      sigs: ['cache.nixos.org-1:abc'],
      ca: undefined,
      open: async function* () {},
    });
    expect(info).toEqual({
      cache: 'main',
      store_path_hash: '00000000000000000000000000000000',
      store_path: '/nix/store/00000000000000000000000000000000-top',
      references: ['11111111111111111111111111111111-lib'],
      system: null,
      deriver: '22222222222222222222222222222222-top.drv',
      sigs: ['cache.nixos.org-1:abc'],
      ca: null,
      nar_hash: `sha256:${Buffer.from(narHash.digest).toString('hex')}`,
      nar_size: 120,
    });
    expect(info.nar_hash).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});
