import { createHash } from 'node:crypto';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase32 } from '../../src/nix/base32.js';
import { loadConfig } from '../../src/config.js';
import { defaultConfigPath } from '../../src/config-paths.js';
import { cachixRun, type CliResult } from '../helpers/cli.js';
import { buildTestClosure, buildWithNix, requireNix } from '../helpers/nix.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { makeNixConfDirs, removeDir, type NixSandboxDirs } from '../helpers/nix-user.js';

const OTHER_KEY = 'other-1:7d4ZwZqZdqZjyP4TEBqgtBNU0mvzoZyJLYJ2vr2FVM0=';
let dirs: NixSandboxDirs;
let closure: { top: string; lib: string; data: string };
/** The public key the 'web' cache (a copy of 'zstd') is signed with. */
let webPublicKey: string;

function run(args: string[]): Promise<CliResult> {
  return cachixRun(args, { env: dirs.env });
}

function hashPart(path: string): string {
  return path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
}

beforeAll(async () => {
  requireNix();
  dirs = await makeNixConfDirs('cachix-verify-');
  closure = await buildTestClosure('verify');
  for (const [name, method] of [
    ['zstd', 'zstd'],
    ['xz', 'xz'],
    ['none', 'none'],
  ]) {
    expect((await cachixRun(['create', name!], { env: dirs.env })).code).toBe(0);
    const pushed = await run(['push', name!, '-m', method!, closure.top]);
    expect(pushed.code, pushed.stderr).toBe(0);
  }
  // The caches some tests change on their own are copies of a pushed one, made before any test
  // tampers with it, and registered under its key: 'plain' and 'filehash' read closure.data's
  // uncompressed and zstd NARs, 'web' is served by nginx.
  const config = await loadConfig(defaultConfigPath(dirs.env));
  for (const [copy, of] of [
    ['plain', 'none'],
    ['filehash', 'zstd'],
    ['web', 'zstd'],
  ] as const) {
    await cp(cacheDir(of), cacheDir(copy), { recursive: true });
    const registered = await cachixRun(['create', copy], { env: { ...dirs.env, CACHIX_SIGNING_KEY: config.caches[of]!.signingKey } });
    expect(registered.code, registered.stderr).toBe(0);
  }
  webPublicKey = config.caches['zstd']!.publicKey!;
});
afterAll(async () => removeDir(dirs.root));

function cacheDir(name: string): string {
  return join(dirs.xdgDataHome, 'cachix', 'caches', name);
}

describe('cachix verify', () => {
  it.each(['zstd', 'xz', 'none'])('says ok for every pushed path (%s)', async (name) => {
    const paths = [closure.top, closure.lib, closure.data];
    const result = await run(['verify', name, ...paths]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(paths.map((path) => `${path} ok\n`).join(''));
  });

  it('--recursive checks the closure of each path, in order, and says how many were verified', async () => {
    const closureLines = (await run(['verify', 'none', '--recursive', closure.top])).stdout.trim().split('\n');
    expect(closureLines.length).toBeGreaterThanOrEqual(3);
    for (const path of [closure.top, closure.lib, closure.data]) expect(closureLines).toContain(`${path} ok`);
    const result = await run(['verify', 'none', '-r', closure.top]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe(`all ${closureLines.length} paths verified in none\n`);
    // A path whose closure holds something the cache never got: that one FAILs, the rest are ok.
    const outside = await buildWithNix('verify-outside', 'echo outside > $out');
    const above = await buildWithNix('verify-above', 'echo $dep0 $dep1 > $out', { deps: [outside, closure.top] });
    const partial = await run(['verify', 'none', '-r', above]);
    expect(partial.code).toBe(1);
    expect(partial.stdout).toContain(`${closure.top} ok`);
    expect(partial.stdout).toMatch(new RegExp(`^${outside} FAIL: `, 'm'));
    expect(partial.stdout).toMatch(new RegExp(`^${above} FAIL: `, 'm'));
    expect(partial.stderr).toMatch(/^2 of \d+ paths failed verification in none$/m);
  });

  it('reports a tampered NAR and exits 1 (without --file-hash: the NarHash tells)', async () => {
    const narinfo = await readFile(join(cacheDir('zstd'), `${hashPart(closure.data)}.narinfo`), 'utf8');
    const nar = join(cacheDir('zstd'), /^URL: (.*)$/m.exec(narinfo)![1]!);
    const bytes = await readFile(nar);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(nar, bytes);
    const result = await run(['verify', 'zstd', closure.top, closure.data]);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`${closure.top} ok`);
    expect(lines[1]).toMatch(new RegExp(`^${closure.data} FAIL: .*(NAR unpacks to|cannot be read as zstd|does not unpack)`));
    expect(lines[1]).not.toContain('NAR file hash is');
  });

  it('a NAR whose contents changed but not its shape fails the NarHash check', async () => {
    const narinfo = await readFile(join(cacheDir('none'), `${hashPart(closure.data)}.narinfo`), 'utf8');
    const nar = join(cacheDir('none'), /^URL: (.*)$/m.exec(narinfo)![1]!);
    const bytes = await readFile(nar);
    // The first byte of the first file's contents: after the 'contents' token and the u64 length.
    const contents = bytes.indexOf(Buffer.from('contents')) + 8 + 8;
    bytes[contents] ^= 0x01;
    await writeFile(nar, bytes);
    const result = await run(['verify', 'none', closure.data]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(`^${closure.data} FAIL: .*NAR unpacks to sha256:[0-9a-z]{52}, narinfo says sha256:[0-9a-z]{52}`),
    );
  });

  it('a truncated NAR is reported as one that does not unpack, with the byte where it ends', async () => {
    const narinfo = await readFile(join(cacheDir('none'), `${hashPart(closure.lib)}.narinfo`), 'utf8');
    const nar = join(cacheDir('none'), /^URL: (.*)$/m.exec(narinfo)![1]!);
    const bytes = await readFile(nar);
    await writeFile(nar, bytes.subarray(0, bytes.length - 16));
    const result = await run(['verify', 'none', closure.lib]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL: .*does not unpack: NAR byte \d+: unexpected end of NAR in .*\(truncated\)/);
  });

  it('a large uncompressed NAR cut short is reported as one that does not unpack (the digest workers check it)', async () => {
    // closure.data is megabytes: more than is digested on the main thread. 'plain' is the
    // uncompressed cache as pushed (copied before any test changed it).
    const narinfo = await readFile(join(cacheDir('plain'), `${hashPart(closure.data)}.narinfo`), 'utf8');
    expect(Number(/^NarSize: (\d+)$/m.exec(narinfo)![1])).toBeGreaterThan(2 << 20);
    const nar = join(cacheDir('plain'), /^URL: (.*)$/m.exec(narinfo)![1]!);
    const bytes = await readFile(nar);
    await writeFile(nar, bytes.subarray(0, bytes.length >> 1));
    const result = await run(['verify', 'plain', closure.data]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL: .*does not unpack: NAR byte \d+: unexpected end of NAR in .*\(truncated\)/);
  });

  it('reports a tampered narinfo (its signature no longer verifies), without --file-hash', async () => {
    const file = join(cacheDir('xz'), `${hashPart(closure.lib)}.narinfo`);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/^References: .*$/m, 'References: '));
    const result = await run(['verify', 'xz', closure.lib]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL: .*no signature verifies with xz-1/);
    expect(result.stdout).toMatch(/References differ from the local store/);
  });

  it('reports a wrong key, and a path the cache does not have', async () => {
    const wrongKey = await run(['verify', 'none', '--public-key', OTHER_KEY, closure.top]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toMatch(/FAIL: no signature verifies with other-1/);
    const absent = await buildWithNix('verify-absent', 'echo absent > $out');
    const missing = await run(['verify', 'none', absent]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe(`${absent} FAIL: the cache has no narinfo for it\n`);
  });

  it('a NAR that unpacks to other bytes than its NarHash, with FileHash and sizes all matching, is reported', async () => {
    // FileHash is not signed: whoever changes a NAR can fix it up, so only the NarHash after
    // unpacking (which the signature covers) can tell. Same length, one byte flipped.
    const file = join(cacheDir('none'), `${hashPart(closure.data)}.narinfo`);
    const narinfo = await readFile(file, 'utf8');
    const nar = join(cacheDir('none'), /^URL: (.*)$/m.exec(narinfo)![1]!);
    const bytes = await readFile(nar);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(nar, bytes);
    const tamperedHash = `sha256:${encodeBase32(createHash('sha256').update(bytes).digest())}`;
    const recorded = /^NarHash: (.*)$/m.exec(narinfo)![1]!;
    const recordedFileHash = /^FileHash: (.*)$/m.exec(narinfo)![1]!;
    // As the NAR was left, its FileHash no longer matches either (uncompressed, the two hashes are
    // one): only --file-hash says so; by default the NarHash, which the signature covers, tells.
    const unfixed = await run(['verify', 'none', closure.data]);
    expect(unfixed.code).toBe(1);
    expect(unfixed.stdout).toBe(`${closure.data} FAIL: NAR unpacks to ${tamperedHash}, narinfo says ${recorded}\n`);
    const withFileHash = await run(['verify', 'none', '--file-hash', closure.data]);
    expect(withFileHash.code).toBe(1);
    expect(withFileHash.stdout).toBe(
      `${closure.data} FAIL: NAR file hash is ${tamperedHash}, narinfo says ${recordedFileHash}; NAR unpacks to ${tamperedHash}, narinfo says ${recorded}\n`,
    );
    await writeFile(file, narinfo.replace(/^FileHash: .*$/m, `FileHash: ${tamperedHash}`));
    const result = await run(['verify', 'none', '--file-hash', closure.data]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(`${closure.data} FAIL: NAR unpacks to ${tamperedHash}, narinfo says ${recorded}\n`);
  });

  it('--file-hash reports a FileHash that does not match the NAR file, which the default does not check (main thread and workers)', async () => {
    // 'filehash' is the zstd cache as pushed (copied before any test changed it).
    // closure.data's NAR is megabytes (digested on the workers); closure.top's a few bytes (here).
    expect(
      Number(/^NarSize: (\d+)$/m.exec(await readFile(join(cacheDir('filehash'), `${hashPart(closure.data)}.narinfo`), 'utf8'))![1]),
    ).toBeGreaterThan(2 << 20);
    const otherHash = `sha256:${encodeBase32(createHash('sha256').update('not this NAR file').digest())}`;
    const recorded: string[] = [];
    for (const path of [closure.top, closure.data]) {
      const file = join(cacheDir('filehash'), `${hashPart(path)}.narinfo`);
      const narinfo = await readFile(file, 'utf8');
      recorded.push(/^FileHash: (.*)$/m.exec(narinfo)![1]!);
      // FileHash is not in the signed fingerprint: the signature still verifies.
      await writeFile(file, narinfo.replace(/^FileHash: .*$/m, `FileHash: ${otherHash}`));
    }
    const byDefault = await run(['verify', 'filehash', closure.top, closure.data]);
    expect(byDefault.code, byDefault.stdout).toBe(0);
    expect(byDefault.stdout).toBe(`${closure.top} ok\n${closure.data} ok\n`);
    const checked = await run(['verify', 'filehash', '--file-hash', closure.top, closure.data]);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toBe(
      [closure.top, closure.data]
        .map((path, index) => `${path} FAIL: NAR file hash is ${recorded[index]}, narinfo says ${otherHash}\n`)
        .join(''),
    );
  });

  it('a NAR that is gone is reported', async () => {
    const narinfo = await readFile(join(cacheDir('none'), `${hashPart(closure.top)}.narinfo`), 'utf8');
    const url = /^URL: (.*)$/m.exec(narinfo)![1]!;
    const { rm } = await import('node:fs/promises');
    await rm(join(cacheDir('none'), url));
    const result = await run(['verify', 'none', closure.top]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`its NAR ${url} is missing`);
    expect(await readdir(cacheDir('none'))).toContain(`${hashPart(closure.top)}.narinfo`);
  });
});

describe('cachix verify of a cache served over HTTP (each NAR streamed to the digest workers)', () => {
  let nginx: RunningNginx;
  let publicKey: string;
  beforeAll(async () => {
    // 'web' is the zstd cache as pushed (copied before any test changed it).
    publicKey = webPublicKey;
    nginx = await startNginx(cacheDir('web'));
  });
  afterAll(async () => nginx?.stop());

  const verifyWeb = (...paths: string[]): Promise<CliResult> => run(['verify', nginx.url, '--public-key', publicKey, ...paths]);

  it('says ok for every path', async () => {
    const paths = [closure.top, closure.lib, closure.data];
    const result = await verifyWeb(...paths);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(paths.map((path) => `${path} ok\n`).join(''));
  });

  it('a changed byte is a NarHash failure (or one that does not decompress), a cut-off file one that does not decompress', async () => {
    const narOf = async (path: string): Promise<string> => {
      const narinfo = await readFile(join(cacheDir('web'), `${hashPart(path)}.narinfo`), 'utf8');
      return join(cacheDir('web'), /^URL: (.*)$/m.exec(narinfo)![1]!);
    };
    const data = await narOf(closure.data);
    const bytes = await readFile(data);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(data, bytes);
    const lib = await narOf(closure.lib);
    const libBytes = await readFile(lib);
    await writeFile(lib, libBytes.subarray(0, libBytes.length - 5));
    const result = await verifyWeb(closure.top, closure.lib, closure.data);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`${closure.top} ok`);
    // The decompressor's verdict comes before anything the NAR parser made of its output.
    expect(lines[1]).toMatch(new RegExp(`^${closure.lib} FAIL: its NAR nar/\\S+ cannot be read as zstd: .*truncated`));
    expect(lines[2]).toMatch(new RegExp(`^${closure.data} FAIL: .*(NAR unpacks to|cannot be read as zstd|does not unpack)`));
  });
});
