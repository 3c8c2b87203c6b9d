import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { encodeBase32 } from '../../src/nix/base32.js';
import { formatSigningKey, generateSigningKey } from '../../src/nix/signing.js';
import { buildWithNix, nixDump } from '../helpers/nix.js';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import type { CliResult } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';

/*
 * --verbose is a global flag (before the command), as with cachix itself.
 * Secrets (signing keys, tokens, URL passwords) are written 0600 and never printed: not on
 * stdout, not on stderr, not with --verbose, not in error messages.
 */

const TOKEN = 'tok_9f8e7d6c5b4a3210fedcba9876543210';
const SERVER_TOKEN = 'srv_0123456789abcdef0123456789abcdef';
const URL_PASSWORD = 'hunter2-url-password';

let world: CachixEnv;
let nginx: RunningNginx;
let basicNginx: RunningNginx;
let path: string;
/** Every secret this test made or gave; none may appear in any output. */
const secrets: string[] = [TOKEN, URL_PASSWORD];
const outputs: { what: string; result: CliResult }[] = [];

async function runRecorded(what: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const result = await world.run(args, options);
  outputs.push({ what, result });
  return result;
}

function expectNoSecret(result: CliResult): void {
  for (const secret of secrets) {
    // The base64 body of a key is the secret; its name is not.
    const body = secret.includes(':') ? secret.slice(secret.indexOf(':') + 1) : secret;
    expect(result.stdout, 'stdout').not.toContain(body.slice(0, 20));
    expect(result.stderr, 'stderr').not.toContain(body.slice(0, 20));
  }
}

async function configMode(): Promise<number> {
  return (await stat(world.configPath)).mode & 0o777;
}

async function signingKeyOf(name: string): Promise<string> {
  const match = new RegExp(`\\[caches\\.${name}\\][^[]*signing_key = "([^"]+)"`).exec(await readFile(world.configPath, 'utf8'));
  return match![1]!;
}

beforeAll(async () => {
  world = await makeCachixEnv();
  [nginx, basicNginx, path] = await Promise.all([
    startNginx({ bearerToken: SERVER_TOKEN }),
    startNginx({ basicAuth: { login: 'alice', password: 'the-right-password' } }),
    buildWithNix('secrets', 'echo secret-test > $out'),
  ]);
});
afterAll(async () => Promise.all([world?.cleanup(), nginx?.stop(), basicNginx?.stop()]));

describe('the config holding secrets is 0600 after every command that writes it', () => {
  it('create --verbose: prints the public key only; config 0600, its folder 0700', async () => {
    const created = expectOk(await runRecorded('create', ['--verbose', 'create', 'sec']), 'create');
    secrets.push(await signingKeyOf('sec'));
    expect(created.stdout).toMatch(/^sec-1:[A-Za-z0-9+/]{43}=\n$/);
    expect(await configMode()).toBe(0o600);
    expect((await stat(dirname(world.configPath))).mode & 0o077).toBe(0);
    expectNoSecret(created);
  });

  it('generate-keypair --verbose: 0600, the secret half never printed', async () => {
    // A cache served by us (not on the cachix API), registered without a key: generate-keypair makes it here.
    expectOk(await world.create('other', undefined, { flags: ['--no-signing-key'] }), 'create --no-signing-key');
    const generated = expectOk(await runRecorded('generate-keypair', ['--verbose', 'generate-keypair', 'other']), 'generate-keypair');
    secrets.push(await signingKeyOf('other'));
    expect(generated.stdout).toMatch(/^other-1:[A-Za-z0-9+/]{43}=\n$/);
    expect(await configMode()).toBe(0o600);
    expectNoSecret(generated);
  });

  it('authtoken (argument and --stdin) --verbose: 0600, the token never printed', async () => {
    expectNoSecret(expectOk(await runRecorded('authtoken arg', ['--verbose', 'authtoken', TOKEN]), 'authtoken'));
    expect(await configMode()).toBe(0o600);
    await chmod(world.configPath, 0o640);
    expectNoSecret(
      expectOk(await runRecorded('authtoken --stdin', ['--verbose', 'authtoken', '--stdin'], { input: `${TOKEN}\n` }), 'authtoken --stdin'),
    );
    // Rewriting the file also puts its mode back.
    expect(await configMode()).toBe(0o600);
    expect(await readFile(world.configPath, 'utf8')).toContain(TOKEN);
  });
});

describe('secrets stay out of errors, also with --verbose', () => {
  it('push --verbose to a server that refuses our token (401): one line, no token, no key', async () => {
    expectOk(
      await world.create('guarded', `${nginx.url}/guarded`, { env: { CACHIX_AUTH_TOKEN: SERVER_TOKEN } }),
      'create with the right token',
    );
    secrets.push(await signingKeyOf('guarded'));
    const result = await runRecorded('push 401', ['--verbose', 'push', 'guarded', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: the server refused our credentials for http:\/\/127\.0\.0\.1:\d+\/guarded \(HTTP 401\)$/m);
    expectNoSecret(result);
  });

  it('a cache URL with user:password the server refuses (create --verbose): the password is never shown', async () => {
    const url = `http://alice:${URL_PASSWORD}@127.0.0.1:${basicNginx.port}/basic`;
    const result = await runRecorded('create 401 basic', ['--verbose', 'create', 'basic', '--url', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: the server refused our credentials for http:\/\/127\.0\.0\.1:\d+\/basic \(HTTP 401\)$/m);
    expectNoSecret(result);
  });

  it('a malformed URL with user:password (push --verbose): the error quotes it with the password cut out', async () => {
    const result = await runRecorded('push bad url', ['--verbose', 'push', `http://alice:${URL_PASSWORD}@[`, path], {
      env: { CACHIX_SIGNING_KEY: secrets[2]! },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: 'http:\/\/alice:<redacted>@\[' is not a valid cache URL$/m);
    expectNoSecret(result);
  });

  it('a corrupt CACHIX_SIGNING_KEY with --verbose: named, not echoed', async () => {
    const key = secrets[2]!;
    const corrupt = key.slice(0, -6) + (key.slice(-6, -5) === 'A' ? 'B' : 'A') + key.slice(-5);
    secrets.push(corrupt);
    const result = await runRecorded('push corrupt key', ['--verbose', 'push', `file://${world.home}/nowhere`, path], {
      env: { CACHIX_SIGNING_KEY: corrupt },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: bad signing key in CACHIX_SIGNING_KEY: /m);
    expectNoSecret(result);
  });

  it('no output of any command above holds any secret', () => {
    expect(outputs.length).toBeGreaterThanOrEqual(8);
    for (const { result } of outputs) expectNoSecret(result);
  });
});

describe("the CLI's error reporter redacts whatever reaches it", () => {
  // The errors below carry a secret in text we do not control (a URL the user typed, a file
  // system path in an OS error); only the reporter's last pass stands between it and the log.
  const PATH_SECRET = 'path-secret-5f4e3d2c1b0a';

  it('a user error quoting a URL with a password, in its message and its hint', async () => {
    const url = `http://alice:${URL_PASSWORD}@127.0.0.1:9/nokey`;
    const result = await runRecorded('push no key, password URL', ['push', url, path], { env: { CACHIX_SIGNING_KEY: '' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'cachix: no signing key for http://alice:<redacted>@127.0.0.1:9/nokey\n' +
        "  set CACHIX_SIGNING_KEY to the cache's secret key, or register the cache with it: CACHIX_SIGNING_KEY=<its key> cachix create NAME --url http://alice:<redacted>@127.0.0.1:9/nokey\n",
    );
  });

  it('a user error naming a cache folder whose path holds a secret, in its message and its hint', async () => {
    // Nothing before the reporter redacts a file path: its pass is all that keeps the secret out.
    const root = join(world.home, `token=${PATH_SECRET}-u`);
    const result = await runRecorded('push to a folder that is no cache', ['push', `file://${root}`, path], {
      env: { CACHIX_SIGNING_KEY: formatSigningKey(generateSigningKey('folder-1')) },
    });
    expect(result.code).toBe(1);
    const [message, hint] = result.stderr.split('\n');
    expect(message).toBe(`cachix: ${join(world.home, 'token=<redacted>')} is not a binary cache (no nix-cache-info)`);
    expect(hint).toContain('token=<redacted>');
    expect(result.stdout + result.stderr).not.toContain(PATH_SECRET);
  });

  it.each([
    ['without --verbose', false],
    ['with --verbose (the stack too)', true],
  ])('an unexpected error (%s) naming a path that holds a secret', async (_what, verbose) => {
    const root = join(world.home, `token=${PATH_SECRET}-${verbose ? 'v' : 'q'}`);
    const name = verbose ? 'pathsecretv' : 'pathsecretq';
    expectOk(await world.create(name, `file://${root}`), 'create');
    // A directory where the NAR must go: storing it fails with an OS error that quotes both paths.
    const narName = `${encodeBase32(
      createHash('sha256')
        .update(await nixDump(path))
        .digest(),
    )}.nar`;
    await mkdir(join(root, 'nar', narName, 'in-the-way'), { recursive: true });
    const result = await runRecorded(`push EISDIR ${verbose}`, [...(verbose ? ['--verbose'] : []), 'push', name, '-m', 'none', path]);
    expect(result.code).toBe(1);
    const errorLine = result.stderr.split('\n').find((line) => line.startsWith('cachix: '));
    expect(errorLine).toMatch(
      /^cachix: EISDIR: illegal operation on a directory, rename '.*\/token=<redacted>' -> '.*\/token=<redacted>'$/,
    );
    if (verbose) expect(result.stderr).toMatch(/\n\s+at .*\n/);
    else expect(result.stderr).toContain('  (run with --verbose for details)\n');
    expect(result.stdout + result.stderr).not.toContain(PATH_SECRET);
    // The NAR could not be stored, so its narinfo was never written.
    expect((await readdir(root)).filter((entry) => entry.endsWith('.narinfo'))).toEqual([]);
  });
});

describe('a config others can read', () => {
  it('chmod 644: a command that loads it warns in one line; after chmod 600, no warning', async () => {
    await chmod(world.configPath, 0o644);
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'sec');
    const warned = expectOk(await world.run(['push', 'sec', path]), 'push with a 644 config');
    const warnings = warned.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    expect(warnings).toEqual([
      `warning: ${world.configPath} is readable by other users and may hold signing keys or tokens; run: chmod 600 ${world.configPath}`,
    ]);
    expect(warned.stderr).toMatch(/pushed 1 paths/);
    expect((await readdir(cacheDir)).filter((entry) => entry.endsWith('.narinfo'))).toHaveLength(1);
    await chmod(world.configPath, 0o600);
    const quiet = expectOk(await world.run(['push', 'sec', path]), 'push with a 600 config');
    expect(quiet.stderr).not.toMatch(/warning:/);
  });
});
