import { describe, expect, it } from 'vitest';
import { plainPushPaths } from '../../src/cli/plain-push.js';

const A = '/nix/store/5601vs11k2wx20l78lb6ncf51nbrjpsm-probe.txt';
const B = '/nix/store/sy6pbma5288qr65bl58jr831416b1nmv-bench';

describe('plainPushPaths: which command lines start the closure query before parsing', () => {
  it('push CACHE STORE-PATH...: the paths, a trailing slash dropped as push drops it', () => {
    expect(plainPushPaths(['push', 'mycache', A, `${B}/`], {})).toEqual([A, B]);
  });

  it('options that leave the closure as it is are stepped over, with their values', () => {
    expect(plainPushPaths(['-c', 'other.toml', '--verbose', 'push', '-j', '4', 'mycache', '-m', 'zstd', '-l', '3', A], {})).toEqual([A]);
    expect(plainPushPaths(['push', 'mycache', A, '--jobs=2', '--exclude', '^/nix/store', '--omit-deriver', B], {})).toEqual([A, B]);
  });

  it('any other option, anywhere, leaves the command line to the parser', () => {
    for (const argv of [
      ['push', 'mycache', A, '--no-closure'],
      ['push', 'mycache', A, '--with-build-deps'],
      ['push', '--no-closure', A],
      ['push', '-v', '-j4', 'mycache', A],
      ['push', 'mycache', '--jobs4', A],
      ['push', 'mycache', '--', A],
      ['push', '--help'],
      ['push', 'mycache', A, '-c', 'other.toml'],
      ['--bogus', 'push', 'mycache', A],
    ]) {
      expect(plainPushPaths(argv, {}), argv.join(' ')).toBeUndefined();
    }
  });

  it('no paths (stdin), a ./result link, a path inside a store path, another command: undefined', () => {
    expect(plainPushPaths(['push', 'mycache'], {})).toBeUndefined();
    expect(plainPushPaths(['push', 'mycache', './result'], {})).toBeUndefined();
    expect(plainPushPaths(['push', 'mycache', `${A}/bin/x`], {})).toBeUndefined();
    expect(plainPushPaths(['verify', 'mycache', A], {})).toBeUndefined();
  });

  it('paths outside the store NIX_STORE_DIR names are not store paths', () => {
    expect(plainPushPaths(['push', 'mycache', A], { NIX_STORE_DIR: '/other/store' })).toBeUndefined();
    expect(
      plainPushPaths(['push', 'mycache', '/other/store/5601vs11k2wx20l78lb6ncf51nbrjpsm-x'], { NIX_STORE_DIR: '/other/store' }),
    ).toEqual(['/other/store/5601vs11k2wx20l78lb6ncf51nbrjpsm-x']);
  });
});
