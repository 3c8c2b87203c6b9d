import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import { CACHIX_BIN, cachixRun, type CliResult } from '../helpers/cli.js';
import { listenOnLoopback, type Listening } from '../helpers/loopback.js';
import { requireNix } from '../helpers/nix.js';
import { startNixDaemon } from '../helpers/nix-daemon.js';
import { createTestUser, makeNixConfDirs, removeDir, runAs, type NixSandboxDirs } from '../helpers/nix-user.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';
import { mountSmallTmpfs, type SmallDisk } from '../helpers/tmpfs.js';

const execFileAsync = promisify(execFile);

/**
 * `cachix doctor` against real servers (nginx, s3rver) and real Nix settings, one fixture per
 * way a cache breaks, each with its exact status and fix; the cachix API and attic through their
 * doubles. A healthy cache of each kind passes (exit 0).
 */
interface Finding {
  cache: string;
  check: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  hint?: string;
}

let dirs: NixSandboxDirs;
let nginx: RunningNginx;
let privateNginx: RunningNginx;
let s3: RunningS3rver;
let api: CachixApiDouble;
let attic: AtticDouble;
const API_TOKEN = 'doctor-api-token-0123456789';
const ATTIC_TOKEN = 'doctor-attic-token-0123456789';
const READ_TOKEN = 'doctor-read-token-0123456789';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return cachixRun(args, { env: { ...dirs.env, CACHIX_AUTH_TOKEN: '', CACHIX_SIGNING_KEY: '', ...env } });
}

/** `create` of a file or HTTP cache (setup). */
function create(args: string[]): Promise<CliResult> {
  return cachixRun(['create', ...args], { env: { ...dirs.env, CACHIX_AUTH_TOKEN: '', CACHIX_SIGNING_KEY: '' } });
}

async function doctor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; findings: Finding[]; stderr: string }> {
  const result = await run(['doctor', '--json', ...args], env);
  let findings: Finding[];
  try {
    findings = JSON.parse(result.stdout) as Finding[];
  } catch {
    throw new Error(`doctor printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, findings, stderr: result.stderr };
}

function the(findings: Finding[], cache: string, check: string): Finding {
  const found = findings.find((finding) => finding.cache === cache && finding.check === check);
  if (!found) throw new Error(`no '${check}' finding for ${cache}: ${JSON.stringify(findings, null, 1)}`);
  return found;
}

const fails = (findings: Finding[]): Finding[] => findings.filter((finding) => finding.status === 'fail');

async function writeNixConf(lines: string[]): Promise<void> {
  await writeFile(join(dirs.confDir, 'nix.conf'), lines.join('\n') + '\n');
}

beforeAll(async () => {
  requireNix();
  dirs = await makeNixConfDirs('cachix-doctor-');
  await writeNixConf(['substituters = https://cache.nixos.org/']);
  [nginx, privateNginx, s3] = await Promise.all([
    startNginx(),
    startNginx({ bearerToken: READ_TOKEN, protectReads: true }),
    startS3rver('doctor'),
  ]);
  api = await startCachixApiDouble({
    token: API_TOKEN,
    caches: [{ name: 'demo', publicSigningKeys: [formatPublicKey(publicKeyOf(generateSigningKey('demo.cachix.org-1')))], isPublic: true }],
  });
  attic = await startAtticDouble({ caches: [{ name: 'main', isPublic: true }], tokens: { [ATTIC_TOKEN]: { pull: true, push: true } } });
});

afterAll(async () => {
  await Promise.all([nginx?.stop(), privateNginx?.stop(), s3?.stop(), api?.stop(), attic?.stop()]);
  if (dirs) await removeDir(dirs.root);
});

describe('cachix doctor: a healthy cache of each kind passes', () => {
  it('file cache that Nix uses: every check ok; human output names each and exits 0', async () => {
    expect((await create(['local'])).code).toBe(0);
    const before = await doctor(['--cache', 'local']);
    expect(the(before.findings, 'local', 'nix uses it')).toMatchObject({ status: 'warn', hint: 'cachix use local' });
    expect((await run(['use', 'local', '-m', 'root-nixconf'])).code).toBe(0);
    const after = await doctor(['--cache', 'local']);
    expect(after.code, JSON.stringify(after.findings)).toBe(0);
    for (const check of ['server', 'store dir', 'signing key', 'write', 'nix uses it'])
      expect(the(after.findings, 'local', check).status).toBe('ok');
    const human = await run(['doctor', '--cache', 'local']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ok {4}local {2}signing key: the key from the config entry of local is local-1, the cache's$/m);
  });

  it('nginx (WebDAV PUT), s3rver, the cachix API and attic: no check fails', async () => {
    expect((await create(['web', '--url', nginx.url])).code).toBe(0);
    expect((await run(['create', 'bucket', '--url', s3.s3Url], s3.env)).code).toBe(0);
    for (const [cache, env] of [
      ['web', {}],
      ['bucket', s3.env],
    ] as const) {
      const result = await doctor(['--cache', cache], env);
      expect(fails(result.findings), cache).toEqual([]);
      expect(result.code).toBe(0);
      expect(the(result.findings, cache, 'write').status).toBe('ok');
      expect(the(result.findings, cache, 'clock').status).toBe('ok');
    }
    const cachixApi = await doctor(['--cache', 'demo'], { CACHIX_HOST: api.url, CACHIX_AUTH_TOKEN: API_TOKEN });
    expect(fails(cachixApi.findings)).toEqual([]);
    expect(the(cachixApi.findings, 'demo', 'signing key').message).toMatch(/cachix service signs/);
    const atticUrl = attic.cacheUrl('main');
    const atticCache = await doctor(['--cache', atticUrl], { CACHIX_AUTH_TOKEN: ATTIC_TOKEN });
    expect(fails(atticCache.findings)).toEqual([]);
    expect(the(atticCache.findings, atticUrl, 'signing key').message).toBe('the server signs what it is sent');
  });
});

describe('cachix doctor: each failure named, with its fix', () => {
  it('a server that is down', async () => {
    const result = await doctor(['--cache', 'http://127.0.0.1:9/down']);
    expect(result.code).toBe(1);
    expect(the(result.findings, 'http://127.0.0.1:9/down', 'server')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/cannot reach http:\/\/127\.0\.0\.1:9\/down/),
      hint: 'check the cache URL, that the server is running, and the network',
    });
  });

  it('a refused token is named as a refused credential, not a missing cache', async () => {
    const config = join(dirs.root, 'refused.toml');
    await writeFile(config, `[caches.refused]\nurl = "${privateNginx.url}"\nauth_token = "wrong-token"\n`, { mode: 0o600 });
    const result = await doctor(['--cache', 'refused'], { CACHIX_CONFIG: config });
    expect(result.code).toBe(1);
    const token = the(result.findings, 'refused', 'token');
    expect(token.status).toBe('fail');
    expect(token.message).toMatch(/refused our credentials .*HTTP 401/);
    expect(result.findings.some((finding) => /nix-cache-info/.test(finding.message))).toBe(false);
  });

  it("a signing key that is not the cache's", async () => {
    const stranger = formatSigningKey(generateSigningKey('stranger-1'));
    const result = await doctor(['--cache', 'local'], { CACHIX_SIGNING_KEY: stranger });
    expect(result.code).toBe(1);
    const key = the(result.findings, 'local', 'signing key');
    expect(key.status).toBe('fail');
    expect(key.message).toMatch(/^the signing key from CACHIX_SIGNING_KEY is not the cache's: its public half is none of local-1:/);
    expect(key.hint).toMatch(/Nix would reject everything it signs/);
    expect(JSON.stringify(result.findings)).not.toContain(stranger.split(':')[1]);
  });

  it('a cache Nix substitutes from without trusting its key', async () => {
    const conf = join(dirs.confDir, 'nix.conf');
    const cacheUrl = `file://${join(dirs.xdgDataHome, 'cachix', 'caches', 'local')}`;
    await writeFile(conf, `substituters = ${cacheUrl}\n`);
    const result = await doctor(['--cache', 'local']);
    expect(result.code).toBe(1);
    expect(the(result.findings, 'local', 'nix uses it')).toMatchObject({ status: 'fail', hint: 'cachix use local' });
    expect((await run(['use', 'local', '-m', 'root-nixconf'])).code).toBe(0);
  });

  it('a private cache whose netrc entry has no login', async () => {
    const config = join(dirs.root, 'priv.toml');
    const key = generateSigningKey('priv-1');
    await writeFile(
      config,
      `[caches.priv]\nurl = "${privateNginx.url}"\nauth_token = "${READ_TOKEN}"\npublic_key = "${formatPublicKey(publicKeyOf(key))}"\n`,
      { mode: 0o600 },
    );
    await writeFile(join(privateNginx.root, 'nix-cache-info'), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n');
    const netrc = join(dirs.confDir, 'netrc');
    await writeFile(netrc, `machine 127.0.0.1 password ${READ_TOKEN}\n`, { mode: 0o600 });
    await writeNixConf([
      `substituters = ${privateNginx.url}`,
      `trusted-public-keys = ${formatPublicKey(publicKeyOf(key))}`,
      `netrc-file = ${netrc}`,
    ]);
    const result = await doctor(['--cache', 'priv', '--read-only'], { CACHIX_CONFIG: config });
    expect(the(result.findings, 'priv', 'netrc')).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/has no login/),
      hint: expect.stringMatching(/^give it one: machine 127\.0\.0\.1/),
    });
    expect(JSON.stringify(result.findings)).not.toContain(READ_TOKEN);
    await writeFile(netrc, `machine 127.0.0.1 login token password ${READ_TOKEN}\n`, { mode: 0o600 });
    expect(the((await doctor(['--cache', 'priv', '--read-only'], { CACHIX_CONFIG: config })).findings, 'priv', 'netrc').status).toBe('ok');
    await writeFile(netrc, '');
    const none = await doctor(['--cache', 'priv', '--read-only'], { CACHIX_CONFIG: config });
    expect(the(none.findings, 'priv', 'netrc')).toMatchObject({ status: 'fail', hint: 'cachix use priv' });
    await writeNixConf(['substituters = https://cache.nixos.org/']);
  });

  describe('a read-only cache', () => {
    let disk: SmallDisk;
    beforeAll(async () => {
      disk = await mountSmallTmpfs('2m');
    });
    afterAll(async () => disk?.cleanup());

    it('fails the write check, and --read-only leaves it out', async () => {
      expect((await create(['ro', '--url', disk.dir])).code).toBe(0);
      await execFileAsync('mount', ['-o', 'remount,ro', disk.dir]);
      const result = await doctor(['--cache', 'ro']);
      expect(result.code).toBe(1);
      const write = the(result.findings, 'ro', 'write');
      expect(write.status).toBe('fail');
      expect(write.message).toMatch(/^cannot write to the cache: /);
      const readOnly = await doctor(['--cache', 'ro', '--read-only']);
      expect(the(readOnly.findings, 'ro', 'write')).toMatchObject({ status: 'ok', message: 'not checked (--read-only)' });
      expect(readOnly.code).toBe(0);
      await execFileAsync('mount', ['-o', 'remount,rw', disk.dir]);
    });
  });

  describe('a server whose clock is off', () => {
    let server: Server;
    let listening: Listening;
    let url: string;
    beforeAll(async () => {
      // A binary cache whose Date header is an hour behind ours, as a server with a wrong clock sends.
      server = createServer((request, response) => {
        response.setHeader('Date', new Date(Date.now() - 3600_000).toUTCString());
        if (request.url?.endsWith('/nix-cache-info')) response.end('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
        else {
          response.statusCode = 404;
          response.end();
        }
      });
      listening = await listenOnLoopback(server);
      url = `http://127.0.0.1:${listening.port}/cache`;
    });
    afterAll(async () => listening?.stop());

    it('fails the clock check with how far off and how to fix it', async () => {
      const result = await doctor(['--cache', url, '--read-only']);
      expect(result.code).toBe(1);
      expect(the(result.findings, url, 'clock')).toMatchObject({
        status: 'fail',
        message: expect.stringMatching(/this machine's clock is 60 minutes ahead of/),
        hint: expect.stringMatching(/timedatectl set-ntp true/),
      });
    });
  });

  it('a store path the cache lacks', async () => {
    const result = await doctor(['--cache', 'local', '/nix/store/00000000000000000000000000000000-absent']);
    expect(the(result.findings, 'local', 'store path')).toMatchObject({
      status: 'fail',
      hint: 'cachix push local /nix/store/00000000000000000000000000000000-absent',
    });
  });
});

describe('cachix doctor as an untrusted user', () => {
  it('warns that the Nix daemon ignores the cache without trusted-substituters, and says what an admin adds', async () => {
    const user = await createTestUser();
    const home = await mkdtemp(join(tmpdir(), 'cachix-doctor-user-'));
    const daemon = await startNixDaemon({ confDir: dirs.confDir, stateDir: dirs.root });
    try {
      const cacheDir = join(dirs.xdgDataHome, 'cachix', 'caches', 'local');
      const { stdout: publicKeyLine } = await execFileAsync('sh', [
        '-c',
        `grep public_key ${join(dirs.xdgConfigHome, 'cachix', 'config.toml')} | head -1`,
      ]);
      const publicKey = /"(.*)"/.exec(publicKeyLine)![1]!;
      await mkdir(join(home, '.config', 'cachix'), { recursive: true });
      await mkdir(join(home, '.config', 'nix'), { recursive: true });
      await writeFile(
        join(home, '.config', 'cachix', 'config.toml'),
        `[caches.local]\nurl = "file://${cacheDir}"\npublic_key = "${publicKey}"\n`,
        { mode: 0o600 },
      );
      await writeFile(join(home, '.config', 'nix', 'nix.conf'), `substituters = file://${cacheDir}\ntrusted-public-keys = ${publicKey}\n`);
      for (const path of [
        home,
        join(home, '.config'),
        join(home, '.config', 'cachix'),
        join(home, '.config', 'nix'),
        join(home, '.config', 'cachix', 'config.toml'),
        join(home, '.config', 'nix', 'nix.conf'),
      ])
        await chown(path, user.uid, user.uid);
      await chmod(home, 0o755);
      const env = {
        PATH: '/usr/bin:/bin',
        HOME: home,
        XDG_CONFIG_HOME: join(home, '.config'),
        XDG_CONFIG_DIRS: join(home, 'xdg'),
        NIX_CONF_DIR: dirs.confDir,
        NIX_REMOTE: daemon.remote,
        CI: 'true',
      };
      const result = await runAs(user.name, env, process.execPath, [CACHIX_BIN, 'doctor', '--json', '--cache', 'local', '--read-only']);
      const findings = JSON.parse(result.stdout) as Finding[];
      const trust = the(findings, 'local', 'trust');
      expect(trust.status).toBe('warn');
      expect(trust.message).toMatch(new RegExp(`'${user.name}'.*not .*trusted-substituters`));
      expect(trust.hint).toContain(`trusted-substituters = file://${cacheDir}`);
      expect(trust.hint).toContain(`extra-trusted-public-keys = ${publicKey}`);
    } finally {
      await daemon.stop();
      await user.remove();
      await removeDir(home);
    }
  });
});
