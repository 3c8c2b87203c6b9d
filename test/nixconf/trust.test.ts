import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTrust, matchTrustedUsers, trustFromStoreInfo } from '../../src/nixconf/trust.js';
import { cachixRun } from '../helpers/cli.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';
import { startNixDaemon, type NixDaemon } from '../helpers/nix-daemon.js';
import {
  createTestUser,
  makeNixConfDirs,
  removeDir,
  runAs,
  snapshotFiles,
  type NixSandboxDirs,
  type TestUser,
} from '../helpers/nix-user.js';

const execFileAsync = promisify(execFile);
const CACHIX_BIN = resolve(import.meta.dirname, '../../bin/cachix');

describe("Nix's trusted-users rule", () => {
  const user = { name: 'alice', uid: 1000, groups: ['alice', 'wheel'] };
  const at = (value: string) => ({ value, file: '/etc/nix/nix.conf', line: 3 });
  it('matches the name, a group with @, or *', () => {
    expect(matchTrustedUsers(user, [at('root'), at('alice')])).toMatch(/'alice' is in trusted-users \(\/etc\/nix\/nix.conf line 3\)/);
    expect(matchTrustedUsers(user, [at('root'), at('@wheel')])).toMatch(/group 'wheel', which trusted-users lists as @wheel/);
    expect(matchTrustedUsers(user, [at('*')])).toMatch(/'\*'/);
    expect(matchTrustedUsers(user, [at('root'), at('@admin'), at('alic')])).toBeUndefined();
  });
});

describe('what newer Nix says about trust (nix store ping/info --json)', () => {
  it('reads the trusted field in each shape Nix has printed, and nothing else', () => {
    expect(trustFromStoreInfo('{"trusted":1,"url":"daemon","version":"2.18.1"}')).toBe(true);
    expect(trustFromStoreInfo('{"trusted":0,"url":"daemon","version":"2.18.1"}')).toBe(false);
    expect(trustFromStoreInfo('{"trusted":true,"url":"daemon","version":"2.24.10"}')).toBe(true);
    expect(trustFromStoreInfo('{"trusted":false,"url":"daemon","version":"2.24.10"}')).toBe(false);
    // A local store opened directly has no trust field; Nix 2.8 prints no JSON at all.
    expect(trustFromStoreInfo('{"url":"local","version":"2.18.1"}')).toBeUndefined();
    expect(trustFromStoreInfo('Store URL: daemon\n')).toBeUndefined();
    expect(trustFromStoreInfo('null')).toBeUndefined();
    expect(trustFromStoreInfo('{"trusted":"yes"}')).toBeUndefined();
  });
});

describe('detectTrust: what decides without asking Nix', () => {
  const alice = { name: 'alice', uid: 1000, groups: ['alice'] };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachix-trust-rules-'));
    await writeFile(join(dir, 'nix.conf'), 'trusted-users = root\n');
  });
  afterAll(async () => removeDir(dir));

  it('a store folder the user can write means trust only when Nix opens it directly, not through a daemon', async () => {
    // The folder is writable (by this root test process); the daemon socket leads nowhere, so
    // Nix cannot be asked and the config decides: alice is not in trusted-users.
    const env = { NIX_CONF_DIR: dir, NIX_STORE_DIR: dir, PATH: process.env.PATH };
    const local = await detectTrust(alice, env);
    expect(local).toEqual({ trusted: true, reason: `'alice' can write ${dir} (a single-user install)`, trustedUsersSet: true });
    const viaDaemon = await detectTrust(alice, { ...env, NIX_REMOTE: `unix://${join(dir, 'no-daemon.socket')}` });
    expect(viaDaemon).toEqual({
      trusted: false,
      reason: `'alice' is not in trusted-users (root) of ${join(dir, 'nix.conf')}`,
      trustedUsersSet: true,
    });
  });
});

describe('a non-root user and a real nix-daemon', () => {
  let dirs: NixSandboxDirs;
  let user: TestUser;
  let group: string;
  let userHome: string;
  let daemon: NixDaemon | undefined;
  let storePath: string;
  let userEnv: Record<string, string>;
  let cacheUrl: string;
  let cacheKey: string;

  beforeAll(async () => {
    requireNix();
    group = `cachixgrp-${process.pid % 100000}`;
    user = await createTestUser([group]);
    dirs = await makeNixConfDirs('cachix-trust-');
    // The daemon substitutes, so the system config must not send it to the network.
    await writeFile(
      join(dirs.confDir, 'nix.conf'),
      '# system config for the test daemon\nbuild-users-group = nixbld\nsubstituters =\ntrusted-users = root\n!include trust.d/users.conf\n',
    );
    // Root makes and fills a file:// cache that the user and the daemon can read.
    expect((await cachixRun(['create', 'demo'], { env: dirs.env })).code).toBe(0);
    storePath = await buildWithNix('trust-substitute', 'echo from the cache > $out');
    const pushed = await cachixRun(['push', 'demo', storePath], { env: dirs.env });
    expect(pushed.code, pushed.stderr).toBe(0);
    await execFileAsync('nix-store', ['--delete', storePath], { env: dirs.env });
    const config = await readFile(join(dirs.xdgConfigHome, 'cachix', 'config.toml'), 'utf8');
    const url = /url = "(.*)"/.exec(config)![1]!;
    const publicKey = /public_key = "(.*)"/.exec(config)![1]!;
    cacheUrl = url;
    cacheKey = publicKey;
    // The user's own home and cachix config, naming the cache and its key (no signing key).
    userHome = await mkdtemp(join(tmpdir(), 'cachix-user-home-'));
    await mkdir(join(userHome, '.config', 'cachix'), { recursive: true });
    // Mode 0600, as cachix itself writes its config (a readable one gets a warning line).
    await writeFile(join(userHome, '.config', 'cachix', 'config.toml'), `[caches.demo]\nurl = "${url}"\npublic_key = "${publicKey}"\n`, {
      mode: 0o600,
    });
    await chown(userHome, user.uid, user.uid);
    for (const path of [join(userHome, '.config'), join(userHome, '.config', 'cachix'), join(userHome, '.config', 'cachix', 'config.toml')])
      await chown(path, user.uid, user.uid);
    await chmod(userHome, 0o755);
    daemon = await startNixDaemon({ confDir: dirs.confDir, stateDir: dirs.root });
    userEnv = {
      PATH: '/usr/bin:/bin:/usr/sbin:/sbin',
      HOME: userHome,
      XDG_CONFIG_HOME: join(userHome, '.config'),
      XDG_CONFIG_DIRS: join(userHome, 'xdg-dirs'),
      NIX_CONF_DIR: dirs.confDir,
      NIX_REMOTE: daemon.remote,
      CI: 'true',
    };
  });

  afterAll(async () => {
    await daemon?.stop();
    await user?.remove();
    if (dirs) await removeDir(dirs.root);
    if (userHome) await removeDir(userHome);
  });

  it('untrusted: writes nothing and says how to become trusted', async () => {
    const before = { system: await snapshotFiles(dirs.root), home: await snapshotFiles(userHome) };
    const result = await runAs(user.name, userEnv, process.execPath, [CACHIX_BIN, 'use', 'demo']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(new RegExp(`^cachix: user '${user.name}' is not trusted by Nix`));
    expect(result.stderr).toContain(`extra-trusted-users = ${user.name}`);
    expect(result.stderr).toContain(`nix.settings.trusted-users = [ "root" "${user.name}" ];`);
    // Root's cachix config does not know the user's name for the cache: the advice names URL and key.
    expect(result.stderr).not.toContain('sudo cachix use demo');
    expect(result.stderr).toContain(`sudo cachix use ${cacheUrl} --public-key ${cacheKey}`);
    expect(result.stderr).toContain(`extra-trusted-substituters = ${cacheUrl}`);
    expect(result.stderr).toContain(`extra-trusted-public-keys = ${cacheKey}`);
    expect({ system: await snapshotFiles(dirs.root), home: await snapshotFiles(userHome) }).toEqual(before);
  });

  it('untrusted: the narrow fix it prints first works, and the user stays untrusted', async () => {
    const advice = await runAs(user.name, userEnv, process.execPath, [CACHIX_BIN, 'use', 'demo']);
    expect(advice.code).toBe(1);
    const hint = advice.stderr;
    // Narrow (one cache) before broad (trusted-users), with the NixOS options for both.
    expect(hint.indexOf('extra-trusted-substituters')).toBeLessThan(hint.indexOf(`extra-trusted-users = ${user.name}`));
    expect(hint).toMatch(/nix\.settings\.trusted-substituters = \[ "file:\/\/[^"]+" \];/);
    expect(hint).toMatch(/nix\.settings\.trusted-public-keys = \[ "demo-1:[^"]+" \];/);
    const rootLines = hint
      .split('\n')
      .filter((line) => /^\s+extra-trusted-(substituters|public-keys) = /.test(line))
      .map((line) => line.trim());
    expect(rootLines).toHaveLength(2);
    const userLine = /~\/\.config\/nix\/nix\.conf:\s+(extra-substituters = \S+)/.exec(hint)![1]!;
    const systemConf = join(dirs.confDir, 'nix.conf');
    const system = await readFile(systemConf, 'utf8');
    const userConf = join(userHome, '.config', 'nix', 'nix.conf');
    try {
      await writeFile(systemConf, `${system}${rootLines.join('\n')}\n`);
      await daemon!.stop();
      daemon = await startNixDaemon({ confDir: dirs.confDir, stateDir: dirs.root });
      await mkdir(dirname(userConf), { recursive: true });
      await writeFile(userConf, `${userLine}\n`);
      await chown(dirname(userConf), user.uid, user.uid);
      await chown(userConf, user.uid, user.uid);
      const realised = await runAs(user.name, userEnv, 'nix-store', ['--realise', storePath]);
      expect(realised.code, realised.stderr + daemon!.log()).toBe(0);
      expect(await readFile(storePath, 'utf8')).toBe('from the cache\n');
      // Still not trusted, but the daemon now honours this cache from the user's nix.conf, so use
      // accepts (the next test shows it writing and substituting).
    } finally {
      await writeFile(systemConf, system);
      await rm(userConf, { force: true });
      await execFileAsync('nix-store', ['--delete', storePath], { env: dirs.env }).catch(() => undefined);
    }
  });

  it('untrusted, but the admin allows this cache (trusted-substituters + its key): use writes the user nix.conf, Nix substitutes, and remove undoes it once no longer allowed', async () => {
    const systemConf = join(dirs.confDir, 'nix.conf');
    const original = await readFile(systemConf, 'utf8');
    await writeFile(systemConf, `${original}extra-trusted-substituters = ${cacheUrl}\nextra-trusted-public-keys = ${cacheKey}\n`);
    await daemon!.stop();
    daemon = await startNixDaemon({ confDir: dirs.confDir, stateDir: dirs.root });
    const userConf = join(userHome, '.config', 'nix', 'nix.conf');
    try {
      const used = await runAs(user.name, userEnv, process.execPath, [CACHIX_BIN, 'use', 'demo']);
      expect(used.code, used.stderr).toBe(0);
      expect(used.stderr).toMatch(/note: .* is not a trusted Nix user, but .* already allows/);
      expect(await readFile(userConf, 'utf8')).toBe(`extra-substituters = ${cacheUrl}\nextra-trusted-public-keys = ${cacheKey}\n`);
      const realised = await runAs(user.name, userEnv, 'nix-store', ['--realise', storePath]);
      expect(realised.code, realised.stderr + daemon!.log()).toBe(0);
    } finally {
      await execFileAsync('nix-store', ['--delete', storePath], { env: dirs.env }).catch(() => undefined);
      await writeFile(systemConf, original);
      await daemon!.stop();
      daemon = await startNixDaemon({ confDir: dirs.confDir, stateDir: dirs.root });
    }
    // No longer allowed, still untrusted: taking out what use added is always possible.
    const removed = await runAs(user.name, userEnv, process.execPath, [CACHIX_BIN, 'remove', 'demo']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await readFile(userConf, 'utf8')).toBe('');
  });

  it('NIX_REMOTE unset (the default multi-user setup): an untrusted user is still untrusted, and nothing is written', async () => {
    // Without NIX_REMOTE, Nix itself falls back to the daemon when the store is not writable:
    // only a user who can write the store (a single-user install) is trusted without asking.
    const { NIX_REMOTE: _remote, ...defaultEnv } = userEnv;
    const before = { system: await snapshotFiles(dirs.root), home: await snapshotFiles(userHome) };
    const result = await runAs(user.name, defaultEnv, process.execPath, [CACHIX_BIN, 'use', 'demo']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(new RegExp(`^cachix: user '${user.name}' is not trusted by Nix`));
    expect(result.stderr).toContain(`extra-trusted-users = ${user.name}`);
    expect({ system: await snapshotFiles(dirs.root), home: await snapshotFiles(userHome) }).toEqual(before);
  });

  it('trusted through an @group in an included file: writes the user nix.conf, and the daemon substitutes', async () => {
    await mkdir(join(dirs.confDir, 'trust.d'), { recursive: true });
    await writeFile(join(dirs.confDir, 'trust.d', 'users.conf'), `extra-trusted-users = @${group}\n`);
    // nix-daemon reads trusted-users when it starts.
    await daemon!.stop();
    daemon = await startNixDaemon({ confDir: dirs.confDir, stateDir: dirs.root });
    const used = await runAs(user.name, userEnv, process.execPath, [CACHIX_BIN, 'use', 'demo']);
    expect(used.code, used.stderr).toBe(0);
    const userConf = join(userHome, '.config', 'nix', 'nix.conf');
    expect(await readFile(userConf, 'utf8')).toMatch(/^extra-substituters = file:\/\/.*\nextra-trusted-public-keys = demo-1:.*\n$/);
    await expect(execFileAsync('nix-store', ['--check-validity', storePath])).rejects.toThrow(`path '${storePath}' is not valid`);
    const realised = await runAs(user.name, userEnv, 'nix-store', ['--realise', storePath]);
    expect(realised.code, realised.stderr + daemon!.log()).toBe(0);
    expect(realised.stdout.trim()).toBe(storePath);
    expect(await readFile(storePath, 'utf8')).toBe('from the cache\n');
  });
});
