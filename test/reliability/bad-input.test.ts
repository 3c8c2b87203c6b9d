import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NarWriter } from '../../src/nix/nar/writer.js';
import { NarParseError, parseNar } from '../../src/nix/nar/parse.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { cachix, cachixRun, type CliResult } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { nixDump, buildWithNix } from '../helpers/nix.js';
import { makeNixConfDirs, nixConfigError, removeDir } from '../helpers/nix-user.js';

/**
 * Exactly what the user sees for input we must refuse: exit code, one `cachix: …` line (and at
 * most a hint line), no stack trace without --verbose, no secret echoed back.
 */
function expectRefusal(result: CliResult, exitCode: 1 | 2, pattern: RegExp): string {
  expect(result.code, result.stderr).toBe(exitCode);
  const lines = result.stderr.trim().split('\n');
  const errorLine = lines.find((line) => /^(cachix: |error: )/.test(line));
  expect(errorLine, result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr).not.toContain('--verbose for details');
  return errorLine!;
}

let world: CachixEnv;
let path: string;
let cacheUrl: string;
let secretKey: string;
let publicKey: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  path = await buildWithNix('bad-input', 'mkdir -p $out/bin; echo "#!/bin/sh" > $out/bin/sh; chmod +x $out/bin/sh');
  cacheUrl = `file://${world.home}/keys-cache`;
  publicKey = expectOk(await world.create('keys', cacheUrl), 'create').stdout.trim();
  secretKey = /signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
});
afterAll(async () => world?.cleanup());

describe('signing keys that are not usable, in CACHIX_SIGNING_KEY', () => {
  const secretBody = (): string => secretKey.slice(secretKey.indexOf(':') + 1);
  const cases: [string, () => string, RegExp][] = [
    [
      "cachix's bare base64 for a cache given by URL, with no key name to take",
      () => secretBody(),
      /^cachix: the signing key from CACHIX_SIGNING_KEY is cachix's bare base64, which carries no key name, and file:\/\/\S+ has no public key in the config to take it from$/,
    ],
    [
      'neither format',
      () => 'not a key at all!',
      /^cachix: bad signing key in CACHIX_SIGNING_KEY: the signing key is neither name:base64 \(Nix\) nor base64 \(cachix\)$/,
    ],
    [
      'not base64',
      () => 'keys-1:this is not base64!',
      /^cachix: bad signing key in CACHIX_SIGNING_KEY: the signing key 'keys-1' is not valid base64$/,
    ],
    [
      'truncated (60 of 88 base64 characters)',
      () => secretKey.slice(0, secretKey.indexOf(':') + 1 + 60),
      /^cachix: bad signing key in CACHIX_SIGNING_KEY: the signing key 'keys-1' has 45 bytes, expected 64; is it truncated\?$/,
    ],
    [
      'one character changed in its public half',
      () => secretKey.slice(0, -4) + (secretKey.slice(-4, -3) === 'A' ? 'B' : 'A') + secretKey.slice(-3),
      /^cachix: bad signing key in CACHIX_SIGNING_KEY: the signing key 'keys-1' is corrupt \(its public half does not match its seed\)$/,
    ],
    [
      'a public key',
      () => publicKey,
      /^cachix: bad signing key in CACHIX_SIGNING_KEY: 'keys-1' is a public key; a secret signing key is needed/,
    ],
  ];
  for (const [what, key, pattern] of cases) {
    it(`${what}: one line, exit 1, the key never echoed`, async () => {
      const given = key();
      const result = await world.run(['push', cacheUrl, path], { env: { CACHIX_SIGNING_KEY: given } });
      expectRefusal(result, 1, pattern);
      const body = given.slice(given.indexOf(':') + 1);
      if (body.length >= 16) expect(result.stderr).not.toContain(body.slice(0, 16));
      expect(result.stderr).not.toContain(secretBody().slice(0, 16));
    });
  }
});

describe('signing keys that are not usable, in the config', () => {
  let other: CachixEnv;
  beforeAll(async () => {
    other = await makeCachixEnv();
  });
  afterAll(async () => other?.cleanup());

  async function withConfigKey(signingKey: string): Promise<CliResult> {
    await mkdir(dirname(other.configPath), { recursive: true });
    await writeFile(other.configPath, `[caches.k]\nurl = "${cacheUrl}"\npublic_key = "${publicKey}"\nsigning_key = "${signingKey}"\n`, {
      mode: 0o600,
    });
    return other.run(['push', 'k', path]);
  }

  it('a malformed key: names the config entry, not the key', async () => {
    const result = await withConfigKey('keys-1:garbage');
    expectRefusal(
      result,
      1,
      /^cachix: bad signing key in the config entry of k: the signing key 'keys-1' has \d+ bytes, expected 64; is it truncated\?$/,
    );
  });

  it('a truncated key', async () => {
    const truncated = secretKey.slice(0, 60);
    const result = await withConfigKey(truncated);
    expectRefusal(result, 1, /^cachix: bad signing key in the config entry of k: .*truncated/);
    expect(result.stderr).not.toContain(truncated.slice(10));
  });

  it('the key of another cache: refused, since Nix would reject what it signs', async () => {
    const foreign = (await other.create('foreign')).stdout;
    expect(foreign).toMatch(/^foreign-1:/);
    const foreignSecret = /\[caches\.foreign\][^[]*signing_key = "([^"]+)"/.exec(await readFile(other.configPath, 'utf8'))![1]!;
    const result = await withConfigKey(foreignSecret);
    expectRefusal(result, 1, /^cachix: the signing key from the config entry of k does not belong to k \(its public key is keys-1:/);
    expect(result.stderr).not.toContain(foreignSecret.slice(foreignSecret.indexOf(':') + 1, foreignSecret.indexOf(':') + 20));
  });

  it('a config that is not TOML: the file and line, exit 1', async () => {
    await writeFile(other.configPath, '[caches.k\nurl = "x"\n', { mode: 0o600 });
    const result = await other.run(['push', 'k', path]);
    expectRefusal(result, 1, new RegExp(`^cachix: config ${other.configPath.replace(/[.]/g, '\\.')} line 1 is not valid TOML$`));
  });
});

describe('cache names and URLs', () => {
  it("create 'bad name'", async () => {
    expectRefusal(await world.run(['create', 'bad name']), 1, /^cachix: 'bad name' is not a valid cache name$/);
  });

  it('create x --url ftp://example.org/cache', async () => {
    expectRefusal(await world.run(['create', 'x', '--url', 'ftp://example.org/cache']), 1, /^cachix: 'ftp:' caches are not supported$/);
  });

  it("create y --url 'http://['", async () => {
    expectRefusal(await world.run(['create', 'y', '--url', 'http://[']), 1, /^cachix: 'http:\/\/\[' is not a valid cache URL$/);
  });

  it('push to a name that is neither a name nor a URL', async () => {
    expectRefusal(await world.run(['push', 'not a name', path]), 1, /^cachix: 'not a name' is neither a cache name nor a cache URL$/);
  });

  it('an unknown option: usage error, exit 2', async () => {
    expectRefusal(await world.run(['push', '--no-such-flag', 'keys', path]), 2, /^error: unknown option '--no-such-flag'$/);
  });
});

describe('paths given to push', () => {
  it('a file outside the store', async () => {
    expectRefusal(
      await world.run(['push', 'keys', '/etc/hostname']),
      1,
      /^cachix: '\/etc\/hostname' is not a store path \(it is \/etc\/hostname\)$/,
    );
  });

  it('a store path that does not exist', async () => {
    const missing = '/nix/store/00000000000000000000000000000000-missing';
    expectRefusal(
      await world.run(['push', 'keys', missing]),
      1,
      /^cachix: \/nix\/store\/0{32}-missing is not a valid path in the Nix store$/,
    );
  });

  it('a file inside a store path (/nix/store/<hash>-x/bin/sh)', async () => {
    const inside = `${path}/bin/sh`;
    expectRefusal(
      await world.run(['push', 'keys', inside]),
      1,
      new RegExp(`^cachix: '${inside.replace(/[.]/g, '\\.')}' is inside a store path, not a store path`),
    );
  });

  it('a symlink into the store (./result): accepted and resolved', async () => {
    const link = join(world.home, 'result');
    await symlink(path, link);
    const pushed = expectOk(await world.run(['push', 'keys', link]), 'push ./result');
    expect(pushed.stderr).toMatch(/pushed 1 paths/);
    await rm(link);
  });

  it('a symlink to outside the store: refused, saying where it points', async () => {
    const link = join(world.home, 'result-etc');
    await symlink('/etc', link);
    expectRefusal(
      await world.run(['push', 'keys', link]),
      1,
      new RegExp(`^cachix: '${link.replace(/[.]/g, '\\.')}' is not a store path \\(it is /etc\\)$`),
    );
  });

  it('a path that does not exist at all', async () => {
    expectRefusal(await world.run(['push', 'keys', join(world.home, 'nothing-here')]), 1, /^cachix: '.*\/nothing-here' does not exist$/);
  });
});

describe('NARs that are not whole or not canonical (parseNar)', () => {
  async function parseAll(bytes: Buffer): Promise<unknown> {
    try {
      for await (const entry of parseNar(
        (async function* () {
          yield bytes;
        })(),
      )) {
        if (entry.type === 'regular') for await (const chunk of entry.contents) void chunk;
      }
      return undefined;
    } catch (error) {
      return error;
    }
  }

  it('a real NAR (nix-store --dump) cut in half: a NarParseError saying it is truncated, and where', async () => {
    const whole = await nixDump(path);
    expect(await parseAll(whole)).toBeUndefined();
    const error = await parseAll(whole.subarray(0, Math.floor(whole.length / 2)));
    expect(error).toBeInstanceOf(NarParseError);
    expect((error as Error).message).toMatch(/^NAR byte \d+: unexpected end of NAR .*\(truncated\)/);
  });

  it('directory entries out of order: a NarParseError naming both names', async () => {
    // The writer frames whatever it is told, in the order it is told: here, names out of order.
    const writer = new NarWriter();
    writer.openDirectory();
    for (const name of ['zeta', 'alpha']) {
      writer.openEntry(Buffer.from(name));
      writer.openRegular(false, 1);
      writer.contents(Buffer.from('x'));
      writer.closeRegular(1);
    }
    writer.closeDirectory();
    const nar = Buffer.concat(writer.finish());
    const error = await parseAll(nar);
    expect(error).toBeInstanceOf(NarParseError);
    expect((error as Error).message).toMatch(/^NAR byte \d+: directory entries out of order: 'alpha' after 'zeta'$/);
  });
});

describe('narinfos from a server that are not narinfos: cachix verify', () => {
  let nginx: RunningNginx;
  let hugePath: string;
  let garbagePath: string;
  beforeAll(async () => {
    nginx = await startNginx();
    [hugePath, garbagePath] = await Promise.all([
      buildWithNix('huge-narinfo', 'echo a > $out'),
      buildWithNix('garbage-narinfo', 'echo b > $out'),
    ]);
    await writeFile(join(nginx.root, 'nix-cache-info'), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    const hash = (storePath: string): string => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    // 5 MB of plausible lines, and bytes that are no narinfo at all.
    await writeFile(join(nginx.root, `${hash(hugePath)}.narinfo`), `StorePath: ${hugePath}\n` + 'Sig: x:y\n'.repeat(600_000));
    await writeFile(
      join(nginx.root, `${hash(garbagePath)}.narinfo`),
      Buffer.from('\x1b[2J\x1b[31mPK\x03\x04 this is a zip, not a narinfo\n\xff\xfe'),
    );
  });
  afterAll(async () => nginx?.stop());

  it('reports each path as FAIL with what is wrong, exits 1, and does not crash', async () => {
    const result = await cachix(['verify', nginx.url, hugePath, garbagePath, '--public-key', publicKey], { env: world.env });
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(
        `^${hugePath} FAIL: its narinfo cannot be read: ${nginx.url}/[0-9a-z]{32}\\.narinfo is larger than 1048576 bytes, which no real one is`,
      ),
    );
    // The server's bytes are quoted with escapes, never sent raw to the terminal (ESC [2J would clear it).
    expect(lines[1]).toBe(
      `${garbagePath} FAIL: its narinfo does not parse: narinfo line 1: expected 'Name: value', got '\\x1b[2J\\x1b[31mPK\\x03\\x04 this is a zip, not a narinfo'`,
    );
    expect(result.stdout + result.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(result.stderr).toMatch(/^2 of 2 paths failed verification/m);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a nix.conf that Nix itself rejects: cachix use', () => {
  it('fails with one line naming the file, and leaves it byte-identical', async () => {
    const dirs = await makeNixConfDirs('cachix-badconf-');
    try {
      const env = { ...dirs.env, CACHIX_HOST: 'http://127.0.0.1:9' };
      const run = (args: string[]): Promise<CliResult> => cachixRun(args, { env });
      expectOk(await cachixRun(['create', 'demo'], { env }), 'create');
      const nixConf = join(dirs.confDir, 'nix.conf');
      const broken = 'substituters = https://cache.nixos.org/\nthis line has no equals sign\n';
      await writeFile(nixConf, broken);
      // Real Nix is the judge of what is broken.
      expect(await nixConfigError(dirs.env)).toMatch(/illegal configuration line/);
      const result = await run(['use', 'demo']);
      const line = expectRefusal(result, 1, /nix\.conf/);
      expect(line).toContain(nixConf);
      expect(await readFile(nixConf, 'utf8')).toBe(broken);
    } finally {
      await removeDir(dirs.root);
    }
  });
});
