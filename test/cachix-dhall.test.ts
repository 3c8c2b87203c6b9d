import { describe, expect, it } from 'vitest';
import { cachixDhallSecretKey, parseCachixDhall } from '../src/cachix-dhall.js';
import { importCachixDhall } from '../src/cachix-dhall-import.js';
import { UserError } from '../src/errors.js';
import { cachixDhallText, TOKEN } from './helpers/cachix-dhall-text.js';

/*
 * cachix 1.11 writes cachix.dhall with `show (Dhall.Pretty.prettyExpr (Dhall.embed Dhall.inject
 * config))` (Cachix/Client/Config.hs writeConfig): prettyprinter's layoutPretty at 80 columns, no
 * trailing newline. The field order is the Haskell record's (authToken, hostname, binaryCaches),
 * a record that does not fit on one line goes one field per line with leading commas, a value
 * too long for its line moves to the next one, indented four past its record, and an empty list
 * carries its type. The texts below are laid out by those rules (dhall's Dhall/Pretty/Internal.hs).
 */
const KEY_A = 'A'.repeat(43) + 'Bq' + 'C'.repeat(41) + '==';
const KEY_B = 'z'.repeat(86) + '==';

const GOLDEN_ONE_CACHE = `{ authToken =
    "${TOKEN}"
, hostname = "https://cachix.org"
, binaryCaches =
  [ { name = "mycache"
    , secretKey =
        "${KEY_A}"
    }
  ]
}`;

describe('cachix.dhall as cachix 1.11 writes it', () => {
  it('the layout helper gives the golden text', () => {
    expect(cachixDhallText(TOKEN, 'https://cachix.org', [{ name: 'mycache', secretKey: KEY_A }])).toBe(GOLDEN_ONE_CACHE);
  });

  it('reads the token, the hostname and each cache key', () => {
    expect(parseCachixDhall(GOLDEN_ONE_CACHE, '/home/u/.config/cachix/cachix.dhall')).toEqual({
      path: '/home/u/.config/cachix/cachix.dhall',
      authToken: TOKEN,
      hostname: 'https://cachix.org',
      binaryCaches: [{ name: 'mycache', secretKey: KEY_A }],
    });
  });

  it('reads an empty list with its type, an empty token (none), and two caches (the last of a name wins)', () => {
    const empty = parseCachixDhall(cachixDhallText('', 'https://cachix.org', []), 'c.dhall');
    expect(empty).toMatchObject({ authToken: undefined, binaryCaches: [] });
    const two = parseCachixDhall(
      cachixDhallText(TOKEN, 'https://example.org', [
        { name: 'a', secretKey: KEY_A },
        { name: 'a', secretKey: KEY_B },
      ]),
      'c.dhall',
    );
    expect(cachixDhallSecretKey(two, 'a')).toBe(KEY_B);
    expect(two.hostname).toBe('https://example.org');
  });

  it('reads a hand-written subset: missing fields (cachix merges its defaults), comments, escapes', () => {
    const text = '-- my cachix\n{ binaryCaches = [ { secretKey = "k\\u0041y", name = "x" } ] {- no token -} }\n';
    expect(parseCachixDhall(text, 'c.dhall')).toEqual({
      path: 'c.dhall',
      authToken: undefined,
      hostname: undefined,
      binaryCaches: [{ name: 'x', secretKey: 'kAy' }],
    });
  });

  const refusals: [string, string, RegExp][] = [
    ['an unknown field', '{ authToken = "t"\n, signingKey = "x"\n}', /^c\.dhall line 2: unknown field signingKey/],
    ['a number', '{ authToken = 1 }', /^c\.dhall line 1: expected a text literal, a list or a record$/],
    ['an unclosed record', GOLDEN_ONE_CACHE.slice(0, -1), /^c\.dhall line 10: expected a comma or }$/],
    ['an empty list without its type', '{ binaryCaches = [] }', /^c\.dhall line 1: an empty list needs its type/],
    [
      'a cache without secretKey',
      '{ binaryCaches = [ { name = "x" } ] }',
      /^c\.dhall line 1: each of binaryCaches must have exactly name and secretKey, not name$/,
    ],
    ['an import', './other.dhall', /^c\.dhall line 1: expected a text literal, a list or a record$/],
    ['interpolation', '{ authToken = "${env}" }', /^c\.dhall line 1: text interpolation/],
  ];
  for (const [what, text, pattern] of refusals) {
    it(`refuses ${what} in one line naming the file and the line, without the secrets`, () => {
      let error: unknown;
      try {
        parseCachixDhall(text, 'c.dhall');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).message).toMatch(pattern);
      expect((error as UserError).message).not.toContain('\n');
      expect((error as UserError).message).not.toContain(KEY_A);
      expect((error as UserError).message).not.toContain(TOKEN);
    });
  }
});

describe('importing cachix.dhall into our config', () => {
  const dhall = parseCachixDhall(
    cachixDhallText(TOKEN, 'https://cachix.example.org', [
      { name: 'mine', secretKey: KEY_A },
      { name: 'theirs', secretKey: KEY_B },
    ]),
    'c.dhall',
  );

  it('takes what our config lacks, as cachix API caches, with the bare keys as they are', () => {
    const imported = importCachixDhall({ caches: {} }, dhall);
    expect(imported.config).toEqual({
      authToken: TOKEN,
      host: 'https://cachix.example.org',
      caches: { mine: { url: 'cachix:mine', signingKey: KEY_A }, theirs: { url: 'cachix:theirs', signingKey: KEY_B } },
    });
    expect(imported.taken.join(' ')).not.toContain(KEY_A);
  });

  it('keeps what our config already has, and says so', () => {
    const imported = importCachixDhall(
      {
        authToken: 'other-token',
        caches: { mine: { url: 'file:///srv/mine', signingKey: 'mine-1:xyz' }, theirs: { url: 'cachix:theirs' } },
      },
      dhall,
    );
    expect(imported.config.authToken).toBe('other-token');
    expect(imported.config.caches.mine).toEqual({ url: 'file:///srv/mine', signingKey: 'mine-1:xyz' });
    expect(imported.config.caches.theirs).toEqual({ url: 'cachix:theirs', signingKey: KEY_B });
    expect(imported.kept).toEqual([
      'the auth token (config.toml has another one)',
      'the signing key of mine (config.toml has another one)',
    ]);
  });
});
