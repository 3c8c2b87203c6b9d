import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { formatHashBase32 } from '../../src/nix/hash.js';
import { parsePathInfoJson } from '../../src/nix/path-info-json.js';
import { queryPathInfo, type PathInfo } from '../../src/store/path-info.js';
import { buildTestClosure, NIX_FEATURES, nixClosure, run } from '../helpers/nix.js';

// This machine cannot reach cache.nixos.org; without this Nix asks it about the missing path for seconds.
process.env.NIX_CONFIG ??= 'substituters =';

const FIXTURES = join(import.meta.dirname, '../fixtures/path-info');

/** Comparable: hashes as Nix's base32 text, references sorted. */
function plain(info: PathInfo): Record<string, unknown> {
  return { ...info, narHash: formatHashBase32(info.narHash), references: [...info.references].sort() };
}

describe('parsePathInfoJson on real Nix 2.8 output', () => {
  let top: string;
  let json: string;

  beforeAll(async () => {
    ({ top } = await buildTestClosure('path-info'));
    json = await run('nix', [...NIX_FEATURES, 'path-info', '--json', '-r', top]);
  });

  it('reads nix path-info --json -r as nix-store -q reports each path', async () => {
    const infos = parsePathInfoJson(json);
    expect(infos.map((info) => info.path).sort()).toEqual((await nixClosure(top)).sort());
    for (const info of infos) {
      const query = async (flag: string): Promise<string> => (await run('nix-store', ['-q', flag, info.path])).trim();
      expect(formatHashBase32(info.narHash)).toBe(await query('--hash'));
      expect(info.narSize).toBe(Number(await query('--size')));
      expect([...info.references].sort()).toEqual((await query('--references')).split('\n').filter(Boolean).sort());
      expect(info.deriver).toBe(await query('--deriver'));
      expect(info.ca).toBeUndefined();
    }
  });

  it('queryPathInfo asks Nix and returns the same', async () => {
    const queried = await queryPathInfo([top], { recursive: true });
    expect(queried.map(plain).sort((a, b) => String(a.path).localeCompare(String(b.path)))).toEqual(
      parsePathInfoJson(json)
        .map(plain)
        .sort((a, b) => String(a.path).localeCompare(String(b.path))),
    );
  });

  it('reads the same paths when the JSON is reshaped the way Nix 2.19+ prints it (object keyed by path)', () => {
    const array = JSON.parse(json) as Array<{ path: string }>;
    const object = Object.fromEntries(array.map(({ path, ...rest }) => [path, rest]));
    expect(parsePathInfoJson(JSON.stringify(object)).map(plain)).toEqual(parsePathInfoJson(json).map(plain));
  });

  it('turns a path that is not valid into a UserError', async () => {
    const gone = `${top.slice(0, 11)}${'0'.repeat(32)}-gone`;
    const error = await queryPathInfo([gone]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain(gone);
  });
});

describe('parsePathInfoJson on the shapes newer Nix prints (fixtures from Nix docs and test data)', () => {
  const expected = [
    {
      path: '/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar',
      narHash: 'sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
      narSize: 120,
      references: [],
      deriver: undefined,
      sigs: [],
      ca: undefined,
    },
    {
      path: '/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo',
      narHash: 'sha256:09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm',
      narSize: 34878,
      references: ['/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar', '/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo'],
      deriver: '/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv',
      sigs: ['cache.example.org-1:CJlxxjq9k9tpd2H2pt+u5IzbEMNBy/pTQsU50hqmynOY1qlLxAnXByfy2hdTJkdC3oL7IOngHwiUQwM3VjcRCQ=='],
      ca: 'fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
    },
  ];

  for (const file of [
    'nix-2.8-array.json',
    'nix-2.19-object.json',
    'json-format-1.json',
    'json-format-2-structured.json',
    'json-format-3.json',
  ]) {
    it(`reads ${file}`, async () => {
      const infos = parsePathInfoJson(await readFile(join(FIXTURES, file), 'utf8'));
      expect(infos.map(plain).sort((a, b) => String(a.path).localeCompare(String(b.path)))).toEqual(expected);
    });
  }

  it('puts base names into the store directory the wrapper names', async () => {
    const text = (await readFile(join(FIXTURES, 'json-format-3.json'), 'utf8')).replaceAll('/nix/store', '/gnu/store');
    const infos = parsePathInfoJson(text);
    expect(infos.map((info) => info.path).sort()).toEqual(expected.map((info) => info.path.replace('/nix/', '/gnu/')));
    expect(infos.flatMap((info) => info.references).every((reference) => reference.startsWith('/gnu/store/'))).toBe(true);
  });

  it('turns a null entry (a path that is not valid) into a UserError naming it', async () => {
    const text = await readFile(join(FIXTURES, 'invalid-object.json'), 'utf8');
    expect(() => parsePathInfoJson(text)).toThrow(UserError);
    expect(() => parsePathInfoJson(text)).toThrow('/nix/store/7d9rpf3sr2whc4pxw4xi1i5wbjzh9s1x-gone is not a valid store path');
    expect(() => parsePathInfoJson('[{"path":"/nix/store/7d9rpf3sr2whc4pxw4xi1i5wbjzh9s1x-gone","valid":false}]')).toThrow(UserError);
  });

  it('says so when the JSON has a form it does not know', () => {
    expect(() => parsePathInfoJson('42')).toThrow(/neither an array nor an object/);
    const odd = JSON.stringify({
      '/nix/store/7d9rpf3sr2whc4pxw4xi1i5wbjzh9s1x-x': { narHash: { algorithm: 'sha256', format: 'rot13', hash: 'x' }, narSize: 1 },
    });
    expect(() => parsePathInfoJson(odd)).toThrow(/hash for .* in a form we do not know/);
    const oddCa = JSON.stringify({
      '/nix/store/7d9rpf3sr2whc4pxw4xi1i5wbjzh9s1x-x': { narHash: expected[0]!.narHash, narSize: 1, ca: { method: 'magic' } },
    });
    expect(() => parsePathInfoJson(oddCa)).toThrow(/content address for .* in a form we do not know/);
  });
});
