import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import TOML from '@iarna/toml';
import { loadConfig, saveConfig } from '../../src/config.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachixRun, type CliResult } from '../helpers/cli.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';
import { makeNixConfDirs, nixShowConfig, removeDir, snapshotFiles, type NixSandboxDirs } from '../helpers/nix-user.js';

const execFileAsync = promisify(execFile);
const OTHER_KEY = 'other-1:7d4ZwZqZdqZjyP4TEBqgtBNU0mvzoZyJLYJ2vr2FVM0=';
const USER_CONF =
  '# my own settings\nsubstituters = https://cache.nixos.org/ https://mine.example/\nkeep-outputs = true   # keep\n\nsandbox = false\n';

let dirs: NixSandboxDirs;
let cacheUrl: string;
let publicKey: string;
let systemConf: string;

function run(args: string[], env: NodeJS.ProcessEnv = {}, options: { input?: string } = {}): Promise<CliResult> {
  return cachixRun(args, { env: { ...dirs.env, CACHIX_HOST: 'http://127.0.0.1:9', ...env }, input: options.input });
}

function expectOneLineError(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  const [first] = result.stderr.split('\n');
  expect(first).toMatch(/^cachix: /);
  expect(first).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  requireNix();
  dirs = await makeNixConfDirs('cachix-use-');
  systemConf = join(dirs.confDir, 'nix.conf');
  const created = await run(['create', 'demo']);
  expect(created.code, created.stderr).toBe(0);
  const config = TOML.parse(await readFile(join(dirs.xdgConfigHome, 'cachix', 'config.toml'), 'utf8')) as {
    caches: Record<string, { url: string; public_key: string }>;
  };
  cacheUrl = config.caches.demo!.url;
  publicKey = config.caches.demo!.public_key;
});
afterAll(async () => removeDir(dirs.root));

beforeEach(async () => {
  await rm(systemConf, { recursive: true, force: true });
  await rm(`${systemConf}.bak`, { force: true });
  await writeFile(systemConf, USER_CONF);
});

describe('cachix use as root: the system nix.conf', () => {
  it('adds substituter and key, keeps the user’s lines, keeps a backup, and a second run changes no byte', async () => {
    const result = await run(['use', 'demo']);
    expect(result.code, result.stderr).toBe(0);
    const text = await readFile(systemConf, 'utf8');
    expect(text).toBe(`${USER_CONF}extra-substituters = ${cacheUrl}\nextra-trusted-public-keys = ${publicKey}\n`);
    expect(await readFile(`${systemConf}.bak`, 'utf8')).toBe(USER_CONF);
    const nix = await nixShowConfig(dirs.env);
    expect(nix.get('substituters')).toBe(`https://cache.nixos.org/ https://mine.example/ ${cacheUrl}`);
    expect(nix.get('trusted-public-keys')!.split(' ')).toEqual([
      'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=',
      publicKey,
    ]);
    const again = await run(['use', 'demo']);
    expect(again.code, again.stderr).toBe(0);
    expect(await readFile(systemConf, 'utf8')).toBe(text);
    expect(await readFile(`${systemConf}.bak`, 'utf8')).toBe(USER_CONF);
  });

  it('remove takes out exactly what use added', async () => {
    const before = await nixShowConfig(dirs.env);
    expect((await run(['use', 'demo'])).code).toBe(0);
    const removed = await run(['remove', 'demo']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await readFile(systemConf, 'utf8')).toBe(USER_CONF);
    expect(await nixShowConfig(dirs.env)).toEqual(before);
  });

  it('Nix then substitutes a pushed path from the cache into a fresh store, checking the key', async () => {
    const path = await buildWithNix('use-substitute', 'echo substituted > $out');
    const pushed = await run(['push', 'demo', path]);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect((await run(['use', 'demo'])).code).toBe(0);
    // No network here: keep cache.nixos.org out of this one realise.
    await writeFile(systemConf, (await readFile(systemConf, 'utf8')).replace('https://cache.nixos.org/ https://mine.example/', ''));
    const store = join(dirs.root, 'fresh-store');
    const { stdout } = await execFileAsync('nix-store', ['--store', store, '--realise', path], { env: dirs.env, encoding: 'utf8' });
    expect(stdout.trim()).toBe(path);
    expect(await readFile(join(store, path), 'utf8')).toBe('substituted\n');
  });
});

describe('cachix use: where it writes', () => {
  it('-m user-nixconf writes the user’s nix.conf, which Nix reads after the system one', async () => {
    const result = await run(['use', 'demo', '-m', 'user-nixconf']);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(systemConf, 'utf8')).toBe(USER_CONF);
    expect(await readFile(join(dirs.xdgConfigHome, 'nix', 'nix.conf'), 'utf8')).toBe(
      `extra-substituters = ${cacheUrl}\nextra-trusted-public-keys = ${publicKey}\n`,
    );
    expect((await nixShowConfig(dirs.env)).get('substituters')).toBe(`https://cache.nixos.org/ https://mine.example/ ${cacheUrl}`);
    expect((await run(['remove', 'demo', '-m', 'user-nixconf'])).code).toBe(0);
    expect(await readFile(join(dirs.xdgConfigHome, 'nix', 'nix.conf'), 'utf8')).toBe('');
  });

  it('-O DIR writes nix.conf into DIR; with -m nixos, modules', async () => {
    const out = join(dirs.root, 'declarative');
    expect((await run(['use', 'demo', '-O', out])).code).toBe(0);
    expect(await readFile(join(out, 'nix.conf'), 'utf8')).toBe(
      `extra-substituters = ${cacheUrl}\nextra-trusted-public-keys = ${publicKey}\n`,
    );
    const nixos = join(dirs.root, 'nixos');
    const result = await run(['use', 'demo', '-m', 'nixos', '-O', nixos]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('imports = [ ./cachix.nix ];');
    expect(await readFile(join(nixos, 'cachix', 'demo.nix'), 'utf8')).toContain(`"${publicKey}"`);
    expect(await readFile(systemConf, 'utf8')).toBe(USER_CONF);
  });
});

describe('cachix use --public-key', () => {
  it('pins the key in the config, and refuses a different one without touching any file', async () => {
    const pinned = await run(['use', 'demo', '--public-key', publicKey]);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(await readFile(join(dirs.xdgConfigHome, 'cachix', 'config.toml'), 'utf8')).toContain(`pinned_public_key = "${publicKey}"`);
    const snapshot = await snapshotFiles(dirs.root);
    expectOneLineError(await run(['use', 'demo', '--public-key', OTHER_KEY]), /pinned key other-1:.* is not the key of demo/);
    expect(await snapshotFiles(dirs.root)).toEqual(snapshot);
  });
});

describe('cachix use with bad inputs changes no file', () => {
  const cases: [string, () => Promise<string[]>, RegExp][] = [
    ['a cache that is not there', async () => ['use', 'file:///nonexistent/cache'], /not a binary cache/],
    ['a name that is no name', async () => ['use', 'no/such'], /neither a cache name nor a cache URL/],
    ['a cache with no key anywhere', async () => ['use', cacheUrl], /no public key is known/],
    ['a public key that is not one', async () => ['use', 'demo', '--public-key', 'garbage'], /--public-key is not a Nix public key/],
    [
      'a nix.conf Nix cannot parse',
      async () => {
        await writeFile(systemConf, `${USER_CONF}substituters https://x\n`);
        return ['use', 'demo'];
      },
      /nix\.conf line 6: Nix cannot read/,
    ],
    [
      'a nix.conf that cannot be read',
      async () => {
        await rm(systemConf);
        await mkdir(systemConf);
        return ['use', 'demo'];
      },
      /cannot read .*nix\.conf/,
    ],
  ];
  it.each(cases)('%s', async (_what, prepare, message) => {
    const args = await prepare();
    const snapshot = await snapshotFiles(dirs.root);
    expectOneLineError(await run(args), message);
    expect(await snapshotFiles(dirs.root)).toEqual(snapshot);
  });
});

describe('cachix use on a nix.conf that is a symbolic link', () => {
  it('a link to a dotfiles repository: edited through the link, which stays a link; remove restores it', async () => {
    const dotfiles = join(dirs.root, 'dotfiles');
    await mkdir(dotfiles, { recursive: true });
    const real = join(dotfiles, 'nix.conf');
    await writeFile(real, USER_CONF);
    await rm(systemConf);
    await symlink(real, systemConf);

    const result = await run(['use', 'demo']);
    expect(result.code, result.stderr).toBe(0);
    expect((await lstat(systemConf)).isSymbolicLink()).toBe(true);
    expect(await readlink(systemConf)).toBe(real);
    expect(await readFile(real, 'utf8')).toBe(`${USER_CONF}extra-substituters = ${cacheUrl}\nextra-trusted-public-keys = ${publicKey}\n`);
    expect(await readFile(`${real}.bak`, 'utf8')).toBe(USER_CONF);
    const nix = await nixShowConfig(dirs.env);
    expect(nix.get('substituters')).toBe(`https://cache.nixos.org/ https://mine.example/ ${cacheUrl}`);

    expect((await run(['remove', 'demo'])).code).toBe(0);
    expect(await readlink(systemConf)).toBe(real);
    expect(await readFile(real, 'utf8')).toBe(USER_CONF);
  });

  it('a link into the Nix store (home-manager, NixOS): refused before anything is written, saying what to add where', async () => {
    const source = join(dirs.root, 'generated-nix.conf');
    await writeFile(source, USER_CONF);
    const inStore = (await execFileAsync('nix-store', ['--add', source], { encoding: 'utf8' })).stdout.trim();
    await rm(systemConf);
    await symlink(inStore, systemConf);
    const before = await snapshotFiles(dirs.confDir);

    const result = await run(['use', 'demo']);
    expectOneLineError(
      result,
      new RegExp(
        `${systemConf.replace(/[.]/g, '\\.')} is a link into the Nix store \\(${inStore}\\): it is generated by your Nix configuration`,
      ),
    );
    expect(result.stderr).toContain(`  extra-substituters = ${cacheUrl}\n`);
    expect(result.stderr).toContain(`  extra-trusted-public-keys = ${publicKey}\n`);
    expect(await readlink(systemConf)).toBe(inStore);
    expect(await readFile(inStore, 'utf8')).toBe(USER_CONF);
    expect(await snapshotFiles(dirs.confDir)).toEqual(before);

    expectOneLineError(await run(['remove', 'demo']), /is a link into the Nix store/);
    expect(await readlink(systemConf)).toBe(inStore);
  });
});

describe('cachix use of a private HTTP cache', () => {
  let server: Server;
  let url: string;
  const token = 'private-token-0123456789';
  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url?.endsWith('/nix-cache-info')) {
        response.end('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n');
      } else {
        response.statusCode = 404;
        response.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/private`;
    const configPath = join(dirs.xdgConfigHome, 'cachix', 'config.toml');
    const config = await loadConfig(configPath);
    config.caches.private = { url, publicKey: OTHER_KEY };
    await saveConfig(configPath, config);
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('root: adds a netrc entry beside the others in $NIX_CONF_DIR/netrc, and remove takes it out', async () => {
    const netrc = join(dirs.confDir, 'netrc');
    await writeFile(netrc, 'machine github.com login me password gh\n', { mode: 0o600 });
    const result = await run(['use', 'private'], { CACHIX_AUTH_TOKEN: token });
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(netrc, 'utf8')).toBe(`machine github.com login me password gh\nmachine 127.0.0.1 password ${token}\n`);
    expect((await stat(netrc)).mode & 0o777).toBe(0o600);
    expect(await readFile(systemConf, 'utf8')).not.toContain('netrc-file');
    expect((await run(['remove', 'private'], { CACHIX_AUTH_TOKEN: token })).code).toBe(0);
    expect(await readFile(netrc, 'utf8')).toBe('machine github.com login me password gh\n');
    expect(await readFile(systemConf, 'utf8')).toBe(USER_CONF);
  });

  it('a netrc others could read (0644) that receives the token ends up 0600, its backup too', async () => {
    const netrc = join(dirs.confDir, 'netrc');
    await rm(`${netrc}.bak`, { force: true });
    await writeFile(netrc, 'machine github.com login me password gh\n');
    await chmod(netrc, 0o644);
    // The token as a user gives it: `cachix authtoken --stdin`, kept in the cachix config.
    const stored = await run(['authtoken', '--stdin'], {}, { input: `${token}\n` });
    expect(stored.code, stored.stderr).toBe(0);
    const used = await run(['use', 'private']);
    expect(used.code, used.stderr).toBe(0);
    expect(await readFile(netrc, 'utf8')).toBe(`machine github.com login me password gh\nmachine 127.0.0.1 password ${token}\n`);
    expect((await stat(netrc)).mode & 0o777).toBe(0o600);
    expect((await stat(`${netrc}.bak`)).mode & 0o777).toBe(0o600);
    await chmod(netrc, 0o644);
    const removed = await run(['remove', 'private']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await readFile(netrc, 'utf8')).toBe('machine github.com login me password gh\n');
    expect((await stat(netrc)).mode & 0o777).toBe(0o600);
  });

  it('user nix.conf: a 0600 netrc beside it, named by netrc-file', async () => {
    const result = await run(['use', 'private', '-m', 'user-nixconf'], { CACHIX_AUTH_TOKEN: token });
    expect(result.code, result.stderr).toBe(0);
    const netrc = join(dirs.xdgConfigHome, 'nix', 'netrc');
    expect((await stat(netrc)).mode & 0o777).toBe(0o600);
    expect((await nixShowConfig(dirs.env)).get('netrc-file')).toBe(netrc);
    expect(result.stderr).not.toContain(token);
  });
});
