import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addListValues, removeListValues, setIfAbsent } from '../../src/nixconf/edit.js';
import { requireNix } from '../helpers/nix.js';
import { makeNixConfDirs, nixShowConfig, removeDir, type NixSandboxDirs } from '../helpers/nix-user.js';

const PATH = '/test/nix.conf';
const URL = 'file:///srv/cache';
const KEY = 'test-1:7d4ZwZqZdqZjyP4TEBqgtBNU0mvzoZyJLYJ2vr2FVM0=';

function use(text: string): string {
  return addListValues(addListValues(text, PATH, 'substituters', [URL]), PATH, 'trusted-public-keys', [KEY]);
}

function unuse(text: string): string {
  const substituters = removeListValues(text, PATH, 'substituters', [URL]);
  return removeListValues(substituters.text, PATH, 'trusted-public-keys', [KEY]).text;
}

const SAMPLES: Record<string, string> = {
  empty: '',
  'comments and the default cache':
    '# my settings\nsubstituters = https://cache.nixos.org/ https://mine.example # keep\n\ntrusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=\n',
  'an extra- line of the user': 'extra-substituters = https://a.example   # mine\nextra-trusted-public-keys = a-1:x\n',
  'an extra- line before a plain one': 'extra-substituters = https://early.example\nsubstituters = https://cache.nixos.org/\n',
  'CRLF line ends': 'sandbox = false\r\nextra-substituters = https://a.example\r\n',
  aliases: 'binary-caches = https://old.example\nextra-binary-cache-public-keys = old-1:y\n',
  'indented and tabbed': '  \textra-substituters\t=\thttps://t.example\t\n',
};

describe('additive nix.conf edits', () => {
  it('adds extra- lines to an empty file', () => {
    expect(use('')).toBe(`extra-substituters = ${URL}\nextra-trusted-public-keys = ${KEY}\n`);
  });

  it('appends to an existing extra- line before its comment, leaving every other byte', () => {
    const text = 'keep-going = true # mine\nextra-substituters = https://a.example   # mine\n';
    expect(addListValues(text, PATH, 'substituters', [URL])).toBe(
      `keep-going = true # mine\nextra-substituters = https://a.example ${URL}   # mine\n`,
    );
  });

  it('never appends to an extra- line that a later plain line resets', () => {
    const text = SAMPLES['an extra- line before a plain one']!;
    expect(addListValues(text, PATH, 'substituters', [URL])).toBe(`${text}extra-substituters = ${URL}\n`);
  });

  it('keeps CRLF line ends and a missing final newline', () => {
    expect(addListValues('sandbox = false\r\n', PATH, 'substituters', [URL])).toBe(`sandbox = false\r\nextra-substituters = ${URL}\r\n`);
    expect(addListValues('sandbox = false', PATH, 'substituters', [URL])).toBe(`sandbox = false\nextra-substituters = ${URL}\n`);
  });

  it.each(Object.keys(SAMPLES))('is idempotent and exactly undone by remove: %s', (name) => {
    const text = SAMPLES[name]!;
    const once = use(text);
    expect(once).not.toBe(text);
    expect(use(once)).toBe(once);
    expect(unuse(once)).toBe(text);
    expect(unuse(text)).toBe(text);
  });

  it('does not add what a plain line already has, and remove leaves the user’s plain lines alone', () => {
    const text = `substituters = https://cache.nixos.org/ ${URL}\n`;
    expect(addListValues(text, PATH, 'substituters', [URL])).toBe(text);
    const result = removeListValues(text, PATH, 'substituters', [URL]);
    expect(result.text).toBe(text);
    expect(result.removed).toEqual([]);
    expect(result.leftInPlainLines).toEqual([{ value: URL, line: 1 }]);
  });

  it('remove keeps a line the user commented, emptied of our value', () => {
    const text = `extra-substituters = ${URL} # from cachix\n`;
    expect(removeListValues(text, PATH, 'substituters', [URL]).text).toBe('extra-substituters = # from cachix\n');
  });

  it('refuses to edit a file Nix cannot read', () => {
    expect(() => use('substituters https://x\n')).toThrow(`${PATH} line 1:`);
  });

  it('sets a single-valued setting only when absent', () => {
    expect(setIfAbsent('', PATH, 'netrc-file', '/x/netrc')).toBe('netrc-file = /x/netrc\n');
    expect(setIfAbsent('netrc-file = /y\n', PATH, 'netrc-file', '/x/netrc')).toBe('netrc-file = /y\n');
  });
});

describe('what Nix reads after the edits', () => {
  let dirs: NixSandboxDirs;
  beforeAll(async () => {
    requireNix();
    dirs = await makeNixConfDirs();
    await mkdir(join(dirs.xdgConfigHome, 'nix'), { recursive: true });
  });
  afterAll(async () => removeDir(dirs.root));

  it.each(Object.keys(SAMPLES))('keeps the user’s substituters and adds ours: %s', async (name) => {
    const text = SAMPLES[name]!;
    await writeFile(join(dirs.confDir, 'nix.conf'), text);
    const before = await nixShowConfig(dirs.env);
    await writeFile(join(dirs.confDir, 'nix.conf'), use(text));
    const after = await nixShowConfig(dirs.env);
    const beforeSubstituters = before.get('substituters')!.split(' ').filter(Boolean);
    expect(after.get('substituters')!.split(' ')).toEqual([...beforeSubstituters, URL]);
    expect(after.get('trusted-public-keys')!.split(' ')).toEqual([...before.get('trusted-public-keys')!.split(' ').filter(Boolean), KEY]);
    await writeFile(join(dirs.confDir, 'nix.conf'), unuse(use(text)));
    expect(await nixShowConfig(dirs.env)).toEqual(before);
  });
});
