import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBareSecretKey } from '../../src/nix/secret-key-formats.js';
import { narInfoFingerprint, parseNarInfo } from '../../src/nix/narinfo.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf, signFingerprint } from '../../src/nix/signing.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import { cachixDhallText } from '../helpers/cachix-dhall-text.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix, hashOf } from '../helpers/nix.js';
import { substituteThenDiscard } from '../helpers/substitute.js';

/*
 * A cachix.org user switching over: token-only CI pushes, cachix's bare keys, generate-keypair
 * registering its key, cachix.dhall, pins. Against the double built from cachix's sources; real
 * Nix checks what it serves at the cache's `uri`, trusting only the keys the service publishes.
 */
const TOKEN = 'dropin-token-0123456789abcdef';
const managedKey = generateSigningKey('managed.cachix.org-1');
const selfKey = generateSigningKey('self.cachix.org-1');
const dhallKey = generateSigningKey('dhallcache.cachix.org-1');
const strangerKey = generateSigningKey('stranger-1');

let double: CachixApiDouble;
let world: CachixEnv;

const completes = (cache: string) =>
  double.calls.filter((call) => call.path.startsWith(`/api/v1/cache/${cache}/multipart-nar/`) && call.path.endsWith('/complete'));
const cSigOf = (call: { body: unknown }): string | null => (call.body as { narInfoCreate: { cSig: string | null } }).narInfoCreate.cSig;

function build(tag: string): Promise<string> {
  return buildWithNix(`dropin-${tag}`, `mkdir -p $out; echo ${tag} > $out/name`);
}

async function expectSubstitutes(path: string, cache: string): Promise<void> {
  const trusted = double.publicKeysOf(cache).join(' ');
  const { ok, stderr } = await substituteThenDiscard(path, double.uriOf(cache), trusted);
  expect(ok, stderr).toBe(true);
}

beforeAll(async () => {
  double = await startCachixApiDouble({
    token: TOKEN,
    caches: [
      { name: 'managed', publicSigningKeys: [], managedSigningKey: managedKey, isPublic: true },
      { name: 'self', publicSigningKeys: [formatPublicKey(publicKeyOf(selfKey))], isPublic: true },
      { name: 'fresh', publicSigningKeys: [], isPublic: true },
      { name: 'dhallcache', publicSigningKeys: [formatPublicKey(publicKeyOf(dhallKey))], isPublic: true },
    ],
  });
  world = await makeCachixEnv();
});
afterAll(async () => {
  await world?.cleanup();
  await double?.stop();
});

describe('token-only push: the service signs', () => {
  it('pushes with CACHIX_AUTH_TOKEN alone, says so once, sends cSig null; Nix substitutes trusting only the service key', async () => {
    const path = await build('token-only');
    const result = expectOk(
      await world.run(['--hostname', double.url, 'push', 'managed', path], { env: { CACHIX_AUTH_TOKEN: TOKEN } }),
      'token-only push',
    );
    expect(result.stderr.match(/pushing with the auth token only/g)?.length).toBe(1);
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    expect(completes('managed').map(cSigOf)).toEqual([null]);
    expect(parseNarInfo(double.narinfos.get(`managed/${hashOf(path)}`)!).sigs[0]).toMatch(/^managed\.cachix\.org-1:/);
    await expectSubstitutes(path, 'managed');
  });

  it('a cache the owner signs still needs a key: the service refuses cSig null, and so does a push without token or key', async () => {
    const path = await build('no-key');
    const tokenOnly = await world.run(['--host', double.url, 'push', 'self', path], { env: { CACHIX_AUTH_TOKEN: TOKEN } });
    expect(tokenOnly.code).toBe(1);
    expect(tokenOnly.stderr).toMatch(/cSig is required/);
    const nothing = await world.run(['--host', double.url, 'push', 'cachix:managed', path]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^cachix: neither an auth token nor a signing key for cachix:managed$/m);
  });
});

describe("cachix's bare base64 signing keys", () => {
  it('CACHIX_SIGNING_KEY as `cachix generate-keypair` prints it: signed under the name the service publishes', async () => {
    const path = await build('bare-env');
    const bare = formatBareSecretKey(selfKey);
    expect(bare).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const result = expectOk(
      await world.run(['--host', double.url, 'push', 'self', path], { env: { CACHIX_AUTH_TOKEN: TOKEN, CACHIX_SIGNING_KEY: bare } }),
      'push with a bare key',
    );
    expect(result.stdout + result.stderr).not.toContain(bare.slice(0, 40));
    const narInfo = parseNarInfo(double.narinfos.get(`self/${hashOf(path)}`)!);
    expect(cSigOf(completes('self').at(-1)!)).toBe(signFingerprint(selfKey, narInfoFingerprint(narInfo)).split(':')[1]);
    await expectSubstitutes(path, 'self');
  });

  it('the environment wins over the config, as in cachix', async () => {
    const home = await makeCachixEnv();
    try {
      await mkdir(dirname(home.configPath), { recursive: true });
      const stranger = formatBareSecretKey(strangerKey);
      await writeFile(home.configPath, `[caches.self]\nurl = "cachix:self"\nsigning_key = "${stranger}"\n`, { mode: 0o600 });
      const path = await build('env-wins');
      const fromConfig = await home.run(['--host', double.url, 'push', 'self', path], { env: { CACHIX_AUTH_TOKEN: TOKEN } });
      expect(fromConfig.code).toBe(1);
      expect(fromConfig.stderr).toMatch(/^cachix: the signing key from the config entry of self is not a key cache self publishes/m);
      expect(fromConfig.stderr).not.toContain(stranger.slice(0, 40));
      expectOk(
        await home.run(['--host', double.url, 'push', 'self', path], {
          env: { CACHIX_AUTH_TOKEN: TOKEN, CACHIX_SIGNING_KEY: formatSigningKey(selfKey) },
        }),
        'push with the key from the environment',
      );
      await expectSubstitutes(path, 'self');
    } finally {
      await home.cleanup();
    }
  });
});

describe('generate-keypair for a cachix cache', () => {
  it('registers the public key (POST /key), prints the secret once on stdout, and the next push signs with it', async () => {
    const home = await makeCachixEnv();
    try {
      const result = expectOk(
        await home.run(['--host', double.url, 'generate-keypair', 'fresh'], { env: { CACHIX_AUTH_TOKEN: TOKEN } }),
        'generate-keypair fresh',
      );
      const secret = result.stdout.trim();
      expect(result.stdout).toMatch(/^[A-Za-z0-9+/]{86}==\n$/);
      expect(result.stderr).not.toContain(secret.slice(0, 40));
      const publicHalf = Buffer.from(secret, 'base64').subarray(32).toString('base64');
      const registered = double.calls.filter((call) => call.path === '/api/v1/cache/fresh/key');
      expect(registered.map((call) => [call.status, call.body])).toEqual([[200, { publicKey: publicHalf }]]);
      expect(double.publicKeysOf('fresh')).toEqual([`fresh.cachix.org-1:${publicHalf}`]);
      expect(await readFile(home.configPath, 'utf8')).toContain(`signing_key = "${secret}"`);
      expect((await stat(home.configPath)).mode & 0o777).toBe(0o600);

      const path = await build('after-keypair');
      expectOk(await home.run(['--host', double.url, 'push', 'fresh', path], { env: { CACHIX_AUTH_TOKEN: TOKEN } }), 'push fresh');
      expect(cSigOf(completes('fresh').at(-1)!)).not.toBeNull();
      await expectSubstitutes(path, 'fresh');
    } finally {
      await home.cleanup();
    }
  });

  it('without a token: one line, nothing stored', async () => {
    const home = await makeCachixEnv();
    try {
      const result = await home.run(['--host', double.url, 'generate-keypair', 'fresh']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^cachix: registering a signing key for fresh needs an auth token$/m);
      await expect(stat(home.configPath)).rejects.toThrow();
    } finally {
      await home.cleanup();
    }
  });
});

describe("cachix's cachix.dhall", () => {
  let home: CachixEnv;
  let dhallPath: string;
  const bare = formatBareSecretKey(dhallKey);
  beforeAll(async () => {
    home = await makeCachixEnv();
    dhallPath = join(home.env.XDG_CONFIG_HOME!, 'cachix', 'cachix.dhall');
    await mkdir(dirname(dhallPath), { recursive: true });
    await writeFile(dhallPath, cachixDhallText(TOKEN, double.url, [{ name: 'dhallcache', secretKey: bare }]), { mode: 0o600 });
  });
  afterAll(async () => home?.cleanup());

  it('is read when our config has no token or key: host, token and key from it, nothing printed', async () => {
    const path = await build('from-dhall');
    const result = expectOk(await home.run(['push', 'dhallcache', path]), 'push with cachix.dhall only');
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    expect(result.stdout + result.stderr).not.toContain(bare.slice(0, 40));
    expect(cSigOf(completes('dhallcache').at(-1)!)).not.toBeNull();
    await expectSubstitutes(path, 'dhallcache');
    await expect(stat(home.configPath)).rejects.toThrow();
  });

  it('config import moves it into config.toml (0600) and leaves cachix.dhall as it was', async () => {
    const before = await readFile(dhallPath, 'utf8');
    const result = expectOk(await home.run(['config', 'import']), 'config import');
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    expect(result.stdout + result.stderr).not.toContain(bare.slice(0, 40));
    expect(result.stderr).toMatch(/imported the auth token, host http:\/\/127\.0\.0\.1:\d+, the signing key of dhallcache from /);
    const config = await readFile(home.configPath, 'utf8');
    expect(config).toContain(`auth_token = "${TOKEN}"`);
    expect(config).toContain(`signing_key = "${bare}"`);
    expect((await stat(home.configPath)).mode & 0o777).toBe(0o600);
    expect(await readFile(dhallPath, 'utf8')).toBe(before);
    expect((await home.run(['config', 'get', 'hostname'])).stdout).toBe(`${double.url}\n`);
  });

  it('a malformed one: one line naming the file and line, no secret', async () => {
    const other = await makeCachixEnv();
    try {
      const path = join(other.home, 'broken.dhall');
      await writeFile(path, `{ authToken = "${TOKEN}"\n, binaryCaches = [ { name = "x", secretKey = ${bare} } ]\n}`);
      const result = await other.run([
        '-c',
        path,
        '--host',
        double.url,
        'push',
        'dhallcache',
        '/nix/store/00000000000000000000000000000000-x',
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr.split('\n')[0]).toBe(`cachix: ${path} line 2: expected a text literal, a list or a record`);
      expect(result.stderr).not.toContain(TOKEN);
      expect(result.stderr).not.toContain(bare.slice(0, 40));
    } finally {
      await other.cleanup();
    }
  });
});

describe('pin, config and flags as cachix users type them', () => {
  it('pin CACHE NAME PATH -a ARTIFACT --keep-revisions N posts a PinCreate', async () => {
    const path = await build('pinned');
    const env = { CACHIX_AUTH_TOKEN: TOKEN };
    expectOk(await world.run(['--host', double.url, 'push', 'managed', path], { env }), 'push before pin');
    expectOk(
      await world.run(['--host', double.url, 'pin', 'managed', 'release', path, '-a', '/name', '--keep-revisions', '3'], { env }),
      'pin',
    );
    expect(double.pins.at(-1)).toEqual({
      cache: 'managed',
      name: 'release',
      storePath: path,
      artifacts: ['/name'],
      keep: { tag: 'Revisions', contents: 3 },
    });
    expectOk(await world.run(['--host', double.url, 'pin', 'managed', 'forever', path, '--keep-forever'], { env }), 'pin forever');
    expect(double.pins.at(-1)?.keep).toEqual({ tag: 'Forever' });
    const missing = await world.run(['--host', double.url, 'pin', 'managed', 'x', path, '-a', 'nope'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^cachix: artifact \S+\/nope does not exist$/m);
    const both = await world.run(['--host', double.url, 'pin', 'managed', 'x', path, '--keep-days', '1', '--keep-forever'], { env });
    expect(both.code).toBe(2);
  });

  it('config set/get hostname; -s below 5 MiB is a usage error', async () => {
    const home = await makeCachixEnv();
    try {
      expectOk(await home.run(['config', 'set', 'hostname', 'https://cachix.example.org/']), 'config set hostname');
      expect((await home.run(['config', 'get', 'hostname'])).stdout).toBe('https://cachix.example.org\n');
      const small = await home.run(['push', 'x', '-s', String(4 * 1024 * 1024), '/nix/store/00000000000000000000000000000000-x']);
      expect(small.code).toBe(2);
      expect(small.stderr).toMatch(/--chunk-size must be a whole number from 5242880 to 5368709120/);
    } finally {
      await home.cleanup();
    }
  });
});
