import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkCacheName, configPermissionWarning, loadConfig, saveConfig, writeSecretFile, type Config } from '../src/config.js';
import { defaultConfigPath, localCacheDir, xdgConfigHome, xdgDataHome } from '../src/config-paths.js';
import { UserError } from '../src/errors.js';
import { formatSigningKey, generateSigningKey } from '../src/nix/signing.js';

describe('config file', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachix-config-test-'));
    path = join(dir, 'cachix', 'config.toml');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('saves and loads every field, quotes and all', async () => {
    const config: Config = {
      authToken: 'tok"en\\with "quotes"',
      host: 'https://cachix.example.org',
      caches: {
        mine: { url: 'file:///srv/cache', signingKey: formatSigningKey(generateSigningKey('mine-1')), publicKey: 'mine-1:abc=' },
        'other.cache': { url: 'https://other.example/cache', pinnedPublicKey: 'other-1:def=' },
      },
    };
    await saveConfig(path, config);
    const loaded = await loadConfig(path);
    expect(loaded).toEqual({
      ...config,
      caches: {
        mine: { ...config.caches.mine, pinnedPublicKey: undefined },
        'other.cache': { ...config.caches['other.cache'], signingKey: undefined, publicKey: undefined },
      },
    });
  });

  it('keeps per-server tokens (attic) through a save that changes something else', async () => {
    await saveConfig(path, { authToken: 'global', servers: { 'attic.example.com:8080': { token: 'server-token' } }, caches: {} });
    const loaded = await loadConfig(path);
    expect(loaded.servers).toEqual({ 'attic.example.com:8080': { token: 'server-token' } });
    await saveConfig(path, { ...loaded, caches: { ci: { url: 'attic+https://attic.example.com:8080/ci' } } });
    expect((await loadConfig(path)).servers).toEqual({ 'attic.example.com:8080': { token: 'server-token' } });
  });

  it('writes it 0600 in a 0700 directory, leaving no temporary file behind', async () => {
    await saveConfig(path, { caches: {} });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'cachix'))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(dir, 'cachix'))).toEqual(['config.toml']);
    // Saving over a file someone made world-readable makes it private again.
    await chmod(path, 0o644);
    await saveConfig(path, { caches: {} });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('writeSecretFile replaces the whole file', async () => {
    await writeSecretFile(path, 'a long first version\n');
    await writeSecretFile(path, 'short\n');
    expect(await readFile(path, 'utf8')).toBe('short\n');
  });

  it('a missing file is an empty config', async () => {
    expect(await loadConfig(join(dir, 'nope.toml'))).toEqual({ caches: {} });
  });

  it('invalid TOML is a UserError naming the file and the line', async () => {
    await writeSecretFile(path, 'auth_token = "x"\n\n[caches.a]\nurl = "file:///x\n');
    const error = await loadConfig(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`config ${path} line 4 is not valid TOML`);
    expect((error as UserError).hint).toMatch(/fix the file/);
  });

  it('a cache without a url is a UserError saying what to add', async () => {
    await writeSecretFile(path, '[caches.a]\npublic_key = "a-1:x"\n');
    await expect(loadConfig(path)).rejects.toThrow(`${path}: cache 'a' has no url`);
  });

  it('CRLF line ends (a file edited on Windows), our own header comment included, load as LF ones', async () => {
    await saveConfig(path, { caches: { a: { url: 'file:///srv/a', publicKey: 'a-1:x' } } });
    await writeSecretFile(path, (await readFile(path, 'utf8')).replace(/\n/g, '\r\n'));
    expect((await loadConfig(path)).caches.a).toMatchObject({ url: 'file:///srv/a', publicKey: 'a-1:x' });
  });

  it('values of the wrong shape are named with what was expected', async () => {
    await writeSecretFile(path, 'caches = "x"\n');
    await expect(loadConfig(path)).rejects.toThrow(`${path}: caches is a string, not a table of caches`);
    await writeSecretFile(path, '[caches.a]\nurl = 5\n');
    await expect(loadConfig(path)).rejects.toThrow(`${path}: the url of cache 'a' is a number, not a string`);
    await writeSecretFile(path, '[caches]\na = "file:///x"\n');
    await expect(loadConfig(path)).rejects.toThrow(`${path}: caches.a is a string, not a table`);
  });

  it('an unreadable config is a UserError', async () => {
    await expect(loadConfig(dir)).rejects.toThrow(UserError);
  });

  it('warns when others can read the config, and not when only we can', async () => {
    await saveConfig(path, { caches: {} });
    expect(await configPermissionWarning(path)).toBeUndefined();
    await chmod(path, 0o640);
    expect(await configPermissionWarning(path)).toBe(
      `warning: ${path} is readable by other users and may hold signing keys or tokens; run: chmod 600 ${path}`,
    );
    expect(await configPermissionWarning(join(dir, 'missing'))).toBeUndefined();
  });

  it('reads a hand-written file and ignores keys it does not know', async () => {
    await writeSecretFile(path, 'auth_token = "t"\nfuture_option = 3\n[caches.x]\nurl = "s3://b"\nsigning_key = 42\n');
    expect(await loadConfig(path)).toEqual({
      authToken: 't',
      host: undefined,
      caches: { x: { url: 's3://b', signingKey: undefined, publicKey: undefined, pinnedPublicKey: undefined } },
    });
  });
});

describe('XDG paths', () => {
  it('uses XDG_CONFIG_HOME and XDG_DATA_HOME when set', () => {
    const env = { HOME: '/home/u', XDG_CONFIG_HOME: '/cfg', XDG_DATA_HOME: '/data' };
    expect(xdgConfigHome(env)).toBe('/cfg');
    expect(xdgDataHome(env)).toBe('/data');
    expect(defaultConfigPath(env)).toBe('/cfg/cachix/config.toml');
    expect(localCacheDir('mine', env)).toBe('/data/cachix/caches/mine');
  });

  it('falls back to ~/.config and ~/.local/share, also when the variables are empty', () => {
    for (const env of [{ HOME: '/home/u' }, { HOME: '/home/u', XDG_CONFIG_HOME: '', XDG_DATA_HOME: '' }]) {
      expect(defaultConfigPath(env)).toBe('/home/u/.config/cachix/config.toml');
      expect(localCacheDir('mine', env)).toBe('/home/u/.local/share/cachix/caches/mine');
    }
  });

  it('checks cache names', () => {
    for (const good of ['a', 'my-cache', 'my_cache.v2', '0day']) expect(() => checkCacheName(good)).not.toThrow();
    for (const bad of ['', '-x', '.x', 'a/b', 'a b', '../x', 'x'.repeat(101)]) expect(() => checkCacheName(bad), bad).toThrow(UserError);
  });
});
