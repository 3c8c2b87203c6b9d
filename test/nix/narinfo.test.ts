import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHash, hashesEqual } from '../../src/nix/hash.js';
import { formatNarInfo, MAX_NARINFO_BYTES, narInfoFingerprint, parseNarInfo, type NarInfo } from '../../src/nix/narinfo.js';
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
import { buildTestClosure, NIX_FEATURES, NO_SUBSTITUTERS, requireNix, run } from '../helpers/nix.js';

interface NixCache {
  dir: string;
  secretKey: string;
  publicKey: string;
  otherPublicKey: string;
  /** File name -> the narinfo text Nix wrote. */
  narInfos: Map<string, string>;
  paths: string[];
}

/** Real Nix signs and writes a file:// binary cache of a closure plus a content-addressed path. */
async function nixCopyToFileCache(): Promise<NixCache> {
  requireNix();
  const dir = await mkdtemp(join(tmpdir(), 'cachix-narinfo-golden-'));
  await run('nix-store', ['--generate-binary-cache-key', 'golden-test-1', join(dir, 'sec'), join(dir, 'pub')]);
  await run('nix-store', ['--generate-binary-cache-key', 'golden-test-1', join(dir, 'sec2'), join(dir, 'pub2')]);
  const closure = await buildTestClosure('narinfo-golden');
  const file = join(dir, 'added.txt');
  await writeFile(file, `content-addressed ${process.pid} ${Date.now()} ${Math.random()}\n`);
  const caPath = (await run('nix', [...NIX_FEATURES, 'store', 'add-file', file])).trim();
  const cacheDir = join(dir, 'cache');
  const paths = [closure.top, caPath];
  await run('nix', [
    ...NIX_FEATURES,
    'copy',
    '--to',
    `file://${cacheDir}?compression=xz&secret-key=${join(dir, 'sec')}`,
    ...paths,
    ...NO_SUBSTITUTERS,
  ]);
  const narInfos = new Map<string, string>();
  for (const name of await readdir(cacheDir)) {
    if (name.endsWith('.narinfo')) narInfos.set(name, await readFile(join(cacheDir, name), 'utf8'));
  }
  return {
    dir,
    secretKey: await readFile(join(dir, 'sec'), 'utf8'),
    publicKey: await readFile(join(dir, 'pub'), 'utf8'),
    otherPublicKey: await readFile(join(dir, 'pub2'), 'utf8'),
    narInfos,
    paths,
  };
}

describe('narinfo golden files written by real Nix (nix copy --to file://)', () => {
  let cache: NixCache;

  beforeAll(async () => {
    cache = await nixCopyToFileCache();
  });
  afterAll(async () => rm(cache.dir, { recursive: true, force: true }));

  it('Nix wrote a narinfo for every path of the closure and the content-addressed path', () => {
    // top, lib, data, and the added file.
    expect(cache.narInfos.size).toBe(4);
  });

  it('parses every narinfo and formats it back byte for byte', () => {
    for (const [name, text] of cache.narInfos) {
      const info = parseNarInfo(text);
      expect(`${info.storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`).toBe(name);
      expect(formatNarInfo(info), name).toBe(text);
    }
  });

  it('reads what nix-store -q reports for each path', async () => {
    for (const text of cache.narInfos.values()) {
      const info = parseNarInfo(text);
      const query = async (flag: string): Promise<string> => (await run('nix-store', ['-q', flag, info.storePath])).trim();
      expect(hashesEqual(info.narHash, parseHash(await query('--hash')))).toBe(true);
      expect(info.narSize).toBe(Number(await query('--size')));
      expect([...info.references].sort()).toEqual((await query('--references')).split('\n').filter(Boolean).sort());
      const deriver = await query('--deriver');
      expect(info.deriver).toBe(deriver === 'unknown-deriver' ? undefined : deriver);
      expect(info.compression).toBe('xz');
      expect(info.url).toMatch(/^nar\/[0-9a-z]{52}\.nar\.xz$/);
      expect(info.fileSize).toBeGreaterThan(0);
      expect(info.sigs).toHaveLength(1);
    }
  });

  it('reads the CA field of a content-addressed path', () => {
    const infos = [...cache.narInfos.values()].map((text) => parseNarInfo(text));
    const caInfos = infos.filter((info) => info.ca !== undefined);
    expect(caInfos).toHaveLength(1);
    expect(caInfos[0]!.ca).toMatch(/^fixed:sha256:[0-9a-z]{52}$/);
    expect(caInfos[0]!.deriver).toBeUndefined();
  });

  it("verifies Nix's signatures with Nix's public key, and not with another key or a changed fingerprint", () => {
    const publicKey = parsePublicKey(cache.publicKey);
    const otherKey = parsePublicKey(cache.otherPublicKey);
    expect(otherKey.name).toBe(publicKey.name);
    for (const text of cache.narInfos.values()) {
      const info = parseNarInfo(text);
      const fingerprint = narInfoFingerprint(info);
      const sig = info.sigs[0]!;
      expect(verifySignature(sig, fingerprint, [publicKey])).toBe(true);
      expect(verifySignature(sig, fingerprint, [otherKey])).toBe(false);
      expect(verifySignature(sig, fingerprint, [otherKey, publicKey])).toBe(true);
      expect(
        verifySignature(
          sig,
          fingerprint.replace(/;\d+;/, (match) => `;${Number(match.slice(1, -1)) + 1};`),
          [publicKey],
        ),
      ).toBe(false);
      expect(verifySignature(sig.replace('golden-test-1:', 'renamed-1:'), fingerprint, [publicKey])).toBe(false);
    }
  });

  it("signs a fingerprint with Nix's secret key to exactly Nix's Sig (ed25519 is deterministic)", () => {
    const key = parseSigningKey(cache.secretKey);
    for (const text of cache.narInfos.values()) {
      const info = parseNarInfo(text);
      expect(signFingerprint(key, narInfoFingerprint(info))).toBe(info.sigs[0]);
    }
  });

  it('reads key files made by nix-store --generate-binary-cache-key and writes them back unchanged', () => {
    const key = parseSigningKey(cache.secretKey);
    expect(key.name).toBe('golden-test-1');
    expect(formatSigningKey(key)).toBe(cache.secretKey);
    expect(formatPublicKey(publicKeyOf(key))).toBe(cache.publicKey);
    expect(formatPublicKey(parsePublicKey(cache.publicKey))).toBe(cache.publicKey);
  });

  it('makes signatures real Nix accepts: nix store verify trusts narinfos we signed with our own key', async () => {
    const ours = generateSigningKey('ours-1');
    const reSigned = await mkdtemp(join(tmpdir(), 'cachix-narinfo-resigned-'));
    try {
      await cp(join(cache.dir, 'cache'), reSigned, { recursive: true });
      for (const [name, text] of cache.narInfos) {
        const info = parseNarInfo(text);
        const signed: NarInfo = { ...info, sigs: [signFingerprint(ours, narInfoFingerprint(info))] };
        await writeFile(join(reSigned, name), formatNarInfo(signed));
      }
      const verify = (trusted: string): Promise<string> =>
        run('nix', [
          ...NIX_FEATURES,
          'store',
          'verify',
          '--store',
          `file://${reSigned}`,
          '--no-contents',
          '--sigs-needed',
          '1',
          '--option',
          'trusted-public-keys',
          trusted,
          '-r',
          ...cache.paths,
        ]);
      await verify(formatPublicKey(publicKeyOf(ours)));
      // The control: Nix's own key no longer verifies these narinfos, so the check above means something.
      await expect(verify(cache.publicKey)).rejects.toThrow(/untrusted/);
    } finally {
      await rm(reSigned, { recursive: true, force: true });
    }
  });
});

describe('parseNarInfo rules and errors', () => {
  const path = '/nix/store/mizigj3slh3lrwavdpyp7ixpqy1n63fj-hello';
  const narHash = 'sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h';
  const minimal = [`StorePath: ${path}`, 'URL: nar/x.nar', `NarHash: ${narHash}`, 'NarSize: 120'];
  const text = (lines: string[]): string => lines.join('\n') + '\n';

  it('takes a missing Compression to mean bzip2, as Nix does', () => {
    expect(parseNarInfo(text(minimal)).compression).toBe('bzip2');
  });

  it('ignores fields it does not know, and accepts CRLF-free text without a final newline', () => {
    const info = parseNarInfo(text([...minimal, 'Frobnicate: yes', 'X-Whatever: 1']));
    expect(info.narSize).toBe(120);
    expect(parseNarInfo(minimal.join('\n')).storePath).toBe(path);
  });

  it('reads References and Deriver as base names, and unknown-deriver as none', () => {
    const info = parseNarInfo(
      text([...minimal, `References: ${path.slice(11)} 10d3jkw88mfhh2nhls90r05szdgxckyp-.hidden`, 'Deriver: unknown-deriver']),
    );
    expect(info.references).toEqual([path, '/nix/store/10d3jkw88mfhh2nhls90r05szdgxckyp-.hidden']);
    expect(info.deriver).toBeUndefined();
  });

  it('reads an empty CA or System as none, as Nix does (found by the fuzz test)', () => {
    const info = parseNarInfo(text([...minimal, 'System: ', 'CA: ']));
    expect(info.ca).toBeUndefined();
    expect(info.system).toBeUndefined();
    expect(parseNarInfo(formatNarInfo(info))).toEqual(info);
  });

  it('reads several Sig lines in order', () => {
    expect(parseNarInfo(text([...minimal, 'Sig: a:1', 'Sig: b:2'])).sigs).toEqual(['a:1', 'b:2']);
  });

  it('reads a narinfo in another store directory', () => {
    const other = minimal.map((line) => line.replace('/nix/store', '/gnu/store'));
    expect(parseNarInfo(text(other), '/gnu/store').storePath).toBe(path.replace('/nix/', '/gnu/'));
    expect(() => parseNarInfo(text(other))).toThrow(/narinfo line 1: StorePath .* is not a store path in \/nix\/store/);
  });

  const broken: Array<[string, string[], RegExp]> = [
    ['a FileSize that is not a number', [...minimal, 'FileSize: 12x'], /^narinfo line 5: FileSize is not a number$/],
    ['a negative NarSize', [minimal[0]!, minimal[1]!, minimal[2]!, 'NarSize: -1'], /^narinfo line 4: NarSize is not a number$/],
    [
      'a NarSize beyond 2^53',
      [minimal[0]!, minimal[1]!, minimal[2]!, 'NarSize: 99999999999999999999'],
      /^narinfo line 4: NarSize is too large$/,
    ],
    ['a bad NarHash', [minimal[0]!, minimal[1]!, 'NarHash: sha256:nothash', minimal[3]!], /^narinfo line 3: NarHash is not a valid hash$/],
    ['a bad FileHash', [...minimal, 'FileHash: md5:x'], /^narinfo line 5: FileHash is not a valid hash$/],
    ['a line without a colon', [...minimal, 'garbage'], /^narinfo line 5: expected 'Name: value', got 'garbage'$/],
    [
      'a StorePath outside the store',
      ['StorePath: /tmp/x', ...minimal.slice(1)],
      /^narinfo line 1: StorePath '\/tmp\/x' is not a store path/,
    ],
    [
      'a bad reference',
      [...minimal, 'References: not-a-path'],
      /^narinfo line 5: References has 'not-a-path', which is not a store path name$/,
    ],
    ['a bad Deriver', [...minimal, 'Deriver: x'], /^narinfo line 5: Deriver has 'x'/],
    ['an empty URL', [minimal[0]!, 'URL: ', minimal[2]!, minimal[3]!], /^narinfo line 2: URL is empty$/],
    ['no StorePath', minimal.slice(1), /^narinfo has no StorePath field$/],
    ['no URL', [minimal[0]!, minimal[2]!, minimal[3]!], /^narinfo has no URL field$/],
    ['no NarHash', [minimal[0]!, minimal[1]!, minimal[3]!], /^narinfo has no NarHash field$/],
    ['no NarSize', minimal.slice(0, 3), /^narinfo has no NarSize field$/],
  ];
  for (const [why, lines, message] of broken) {
    it(`rejects ${why}, naming the line`, () => {
      expect(() => parseNarInfo(text(lines))).toThrow(message);
    });
  }

  it('rejects input larger than any narinfo without reading it', () => {
    const huge = text(minimal) + `X: ${'a'.repeat(MAX_NARINFO_BYTES)}\n`;
    expect(() => parseNarInfo(huge)).toThrow(/^narinfo is \d+ bytes, larger than any real narinfo$/);
  });

  it('computes the fingerprint Nix signs: sorted full reference paths, base32 NarHash', () => {
    const info = parseNarInfo(text([...minimal, `References: ${path.slice(11)} 10d3jkw88mfhh2nhls90r05szdgxckyp-.hidden`]));
    expect(narInfoFingerprint(info)).toBe(`1;${path};${narHash};120;/nix/store/10d3jkw88mfhh2nhls90r05szdgxckyp-.hidden,${path}`);
    expect(() => narInfoFingerprint({ ...info, narHash: { algorithm: 'sha1', digest: new Uint8Array(20) } })).toThrow(/sha256/);
  });
});
