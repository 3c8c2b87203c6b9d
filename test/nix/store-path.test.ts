import { describe, expect, it } from 'vitest';
import {
  checkStoreDir,
  checkStorePathName,
  formatStorePath,
  hashPartOf,
  isStorePath,
  parseStorePath,
  parseStorePathBaseName,
  storePathBaseName,
} from '../../src/nix/store-path.js';
import { requireNix, run } from '../helpers/nix.js';

const HASH = 'mizigj3slh3lrwavdpyp7ixpqy1n63fj';

/**
 * Real Nix's verdict on a store path, without touching the store: a `dummy://` store parses the
 * path and then finds it not valid, or refuses it while parsing.
 */
async function nixParses(path: string, storeDir = '/nix/store'): Promise<boolean> {
  try {
    await run('nix-store', ['--store', `dummy://?store=${storeDir}`, '-q', '--hash', path]);
    throw new Error(`a dummy store says ${path} is valid`);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr);
    if (/is not valid/.test(stderr)) return true;
    if (/store path|is not in the Nix store/.test(stderr)) return false;
    throw new Error(`unexpected answer from nix-store for ${path}: ${stderr}`);
  }
}

describe('store path names against real Nix 2.8', () => {
  requireNix();

  const names = [
    'hello-2.12',
    'a?b=c+d_e.f-G',
    '.hidden', // Nix allows a leading dot
    '..z',
    '.x-y',
    'a'.repeat(211),
    'a'.repeat(212),
    'a b',
    'a@b',
    'a/b'.replace('/', ':'),
    'ümlaut',
    'tab\there',
    'a!',
    'a~',
    'a,b',
    'x%y',
  ];

  for (const name of names) {
    it(`agrees with Nix on the name '${name.length > 20 ? `${name.slice(0, 10)}…(${name.length})` : name}'`, async () => {
      const path = `/nix/store/${HASH}-${name}`;
      const ours = checkStorePathName(name) === undefined;
      expect(ours).toBe(await nixParses(path));
      expect(isStorePath(path)).toBe(ours);
    });
  }

  it('rejects the names newer Nix forbids (., .., and a first component of . or ..), which Nix 2.8 still made', () => {
    for (const name of ['.', '..', '.-x', '..-y']) {
      expect(checkStorePathName(name), name).toMatch(/first component is '\.\.?'/);
      expect(isStorePath(`/nix/store/${HASH}-${name}`)).toBe(false);
    }
  });

  it('says what is wrong with a name', () => {
    expect(checkStorePathName('')).toBe('the name is empty');
    expect(checkStorePathName('a'.repeat(212))).toBe('the name is longer than 211 characters');
    expect(checkStorePathName('a b')).toBe("the name contains the character ' '");
  });

  const hashParts: Array<[string, string]> = [
    ['e in the hash', `${HASH.slice(0, 31)}e`],
    ['o in the hash', `o${HASH.slice(1)}`],
    ['u in the hash', `${HASH.slice(0, 10)}u${HASH.slice(11)}`],
    ['t in the hash', `t${HASH.slice(1)}`],
    ['an upper-case hash', HASH.toUpperCase()],
    ['a short hash', HASH.slice(1)],
  ];
  for (const [why, hashPart] of hashParts) {
    it(`rejects ${why}, as Nix does`, async () => {
      const path = `/nix/store/${hashPart}-hello`;
      expect(isStorePath(path)).toBe(false);
      expect(await nixParses(path)).toBe(false);
    });
  }

  it('parses and formats a path in another store directory, as Nix does', async () => {
    const path = (
      await run('nix-instantiate', [
        '--eval',
        '--store',
        'dummy://?store=/gnu/store',
        '-E',
        '(derivation { name = "d"; system = "x"; builder = "/b"; }).outPath',
      ])
    ).trim();
    const text = JSON.parse(path) as string;
    expect(text).toMatch(/^\/gnu\/store\/[0-9a-z]{32}-d$/);
    const parsed = parseStorePath(text, '/gnu/store');
    expect(parsed).toEqual({ storeDir: '/gnu/store', hashPart: text.slice(11, 43), name: 'd' });
    expect(formatStorePath(parsed)).toBe(text);
    expect(storePathBaseName(parsed)).toBe(text.slice(11));
    expect(hashPartOf(text)).toBe(parsed.hashPart);
    expect(await nixParses(text, '/gnu/store')).toBe(true);
    expect(() => parseStorePath(text)).toThrow(/is not in the Nix store \/nix\/store/);
    expect(isStorePath(text, '/gnu/store')).toBe(true);
    expect(isStorePath(text.replace('/gnu/', '/nix/'), '/gnu/store')).toBe(false);
  });

  it('rejects a path inside a store path and a path outside the store, with what is wrong', () => {
    expect(() => parseStorePath(`/nix/store/${HASH}-hello/bin/hello`)).toThrow(/inside a store path, not a store path itself/);
    expect(() => parseStorePath(`/nix/store2/${HASH}-hello`)).toThrow(/is not in the Nix store/);
    expect(() => parseStorePath(`/nix/store/${HASH}`)).toThrow(/expected <32-character hash>-<name>/);
    expect(() => parseStorePath(`/nix/store/${HASH}-`)).toThrow(/expected <32-character hash>-<name>/);
    // Nix itself does not check the separator; nothing Nix makes lacks it, so we insist on it.
    expect(() => parseStorePath(`/nix/store/${HASH}xhello`)).toThrow(/expected <32-character hash>-<name>/);
    expect(() => parseStorePathBaseName(`${HASH}-a b`)).toThrow(/contains the character ' '/);
  });

  it('validates store directories', () => {
    expect(checkStoreDir('/nix/store')).toBeUndefined();
    expect(checkStoreDir('/gnu/store')).toBeUndefined();
    expect(checkStoreDir('/home/me/.local/nix/store')).toBeUndefined();
    expect(checkStoreDir('nix/store')).toMatch(/not an absolute path/);
    expect(checkStoreDir('/nix/store/')).toMatch(/ends with a slash/);
    expect(checkStoreDir('/nix//store')).toMatch(/canonical/);
    expect(checkStoreDir('/nix/./store')).toMatch(/canonical/);
    expect(checkStoreDir('/nix/../store')).toMatch(/canonical/);
  });
});
