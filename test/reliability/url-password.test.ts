import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openCache } from '../../src/caches/open.js';
import { makeContext, type ContextStreams } from '../../src/context.js';
import { registerSecret } from '../../src/redact.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import type { CliResult } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { buildWithNix } from '../helpers/nix.js';

/*
 * A cache URL with `user:password@` in it, given to every command, on success and on failure:
 * the password never appears on stdout or stderr. README promises that every command redacts.
 */

const PASSWORD = 'SECRET-url-pw-4b3c2d1e';
const WRONG = 'WRONG-url-pw-9a8b7c6d';

let world: CachixEnv;
let nginx: RunningNginx;
let scratch: string;
let url: string;
let wrongUrl: string;
let path: string;
let signingKey: string;
let publicKey: string;

function expectNoPassword(result: CliResult, what: string): void {
  for (const secret of [PASSWORD, WRONG]) {
    expect(result.stdout, `${what}: stdout`).not.toContain(secret);
    expect(result.stderr, `${what}: stderr`).not.toContain(secret);
  }
}

async function runBoth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const result = await world.run(args, { env: { CACHIX_SIGNING_KEY: signingKey, ...env } });
  expectNoPassword(result, args.join(' '));
  return result;
}

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-url-password-'));
  [nginx, path] = await Promise.all([
    startNginx({ basicAuth: { login: 'alice', password: PASSWORD }, protectReads: true, listing: 'propfind' }),
    buildWithNix('url-password', 'echo url-password > $out'),
  ]);
  url = `http://alice:${PASSWORD}@127.0.0.1:${nginx.port}/c`;
  wrongUrl = `http://alice:${WRONG}@127.0.0.1:${nginx.port}/c`;
  // A key made by a cache of our own, used as CACHIX_SIGNING_KEY for the URL-given cache.
  publicKey = expectOk(await world.run(['create', 'keyholder']), 'create keyholder').stdout.trim();
  signingKey = /signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
}, 120_000);
afterAll(async () => Promise.all([world?.cleanup(), nginx?.stop(), rm(scratch, { recursive: true, force: true })]));

describe('a URL password, given to every command: never printed', () => {
  it('create, push, verify, info, pin, gc, delete, use, remove succeed without showing it', async () => {
    expectOk(await runBoth(['create', 'withpw', '--url', url]), 'create');
    expectOk(await runBoth(['push', url, path]), 'push by URL');
    expectOk(await runBoth(['push', 'withpw', path], { CACHIX_SIGNING_KEY: '' }), 'push by name');
    const verified = expectOk(await runBoth(['verify', url, path, path, '--public-key', publicKey]), 'verify by URL');
    expect(verified.stderr).toContain(`all 2 paths verified in http://alice:<redacted>@127.0.0.1:${nginx.port}/c`);
    expectOk(await runBoth(['verify', 'withpw', path, '-r', '--public-key', publicKey]), 'verify by name');
    expectOk(await runBoth(['info', url]), 'info');
    expectOk(await runBoth(['info', url, '--json']), 'info --json');
    expectOk(await runBoth(['pin', url, 'rel', path]), 'pin');
    expectOk(await runBoth(['pin', url, '--list']), 'pin --list');
    expectOk(await runBoth(['gc', url, '--older-than', '0', '--dry-run']), 'gc --dry-run');
    expectOk(await runBoth(['pin', url, 'rel', '--delete']), 'pin --delete');
    expectOk(await runBoth(['delete', url, path]), 'delete');
    expectOk(await runBoth(['gc', url, '--older-than', '0']), 'gc');
    // What the failures below are tried on.
    expectOk(await runBoth(['push', url, path]), 'push again');
    const nixConf = join(scratch, 'nixconf');
    expectOk(await runBoth(['use', url, '--public-key', publicKey, '-m', 'user-nixconf'], { XDG_CONFIG_HOME: nixConf }), 'use');
    expectOk(await runBoth(['remove', url, '-m', 'user-nixconf'], { XDG_CONFIG_HOME: nixConf }), 'remove');
  }, 120_000);

  it.each([
    ['push', (u: string) => ['push', u, path]],
    ['verify', (u: string) => ['verify', u, path, '--public-key', publicKey]],
    ['verify with a key the cache does not sign with', () => ['verify', url, path, '--public-key', 'other-1:' + publicKey.split(':')[1]]],
    ['info', (u: string) => ['info', u]],
    ['gc', (u: string) => ['gc', u, '--older-than', '0']],
    ['delete', (u: string) => ['delete', u, path]],
    ['pin', (u: string) => ['pin', u, 'rel', path]],
    ['pin --list', (u: string) => ['pin', u, '--list']],
    ['create', (u: string) => ['create', 'wrongpw', '--url', `${u}/new`]],
  ])('%s refused by the server (wrong password): fails, and the password is not shown', async (_what, args) => {
    const result = await runBoth(args(wrongUrl));
    expect(result.code).not.toBe(0);
  });
});

describe("the CLI's error reporter redacts a password in the error of every command that takes a cache", () => {
  // A URL that does not parse is quoted in the error as typed: only the reporter's redaction
  // stands between it and the terminal.
  const broken = `http://alice:${PASSWORD}@[`;
  it.each([
    ['push', ['push', broken, '/nix/store/00000000000000000000000000000000-x']],
    ['verify', ['verify', broken, '/nix/store/00000000000000000000000000000000-x']],
    ['info', ['info', broken]],
    ['gc', ['gc', broken, '--older-than', '1d']],
    ['delete', ['delete', broken, '/nix/store/00000000000000000000000000000000-x']],
    ['pin', ['pin', broken, '--list']],
    ['use', ['use', broken]],
    ['remove', ['remove', broken]],
    ['create', ['create', 'broken', '--url', broken]],
    ['generate-keypair', ['generate-keypair', broken]],
    ['watch-store', ['watch-store', broken]],
    ['watch-exec', ['watch-exec', broken, '--', 'true']],
    ['daemon run', ['daemon', 'run', broken, '--socket', '/nonexistent/d.sock']],
  ])('%s', async (_what, args) => {
    // No substituters: Nix asked about a path it lacks would otherwise try cache.nixos.org (seconds offline).
    const result = await world.run(args, { env: { CACHIX_SIGNING_KEY: signingKey, NIX_CONFIG: 'substituters =' } });
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.stderr).toContain('alice:<redacted>@[');
    expectNoPassword(result, args.join(' '));
  });
});

describe('each layer of redaction on its own', () => {
  it('a cache opened by URL is named without its password (what every message about it shows)', async () => {
    const context = makeContext({}, { ...process.env, ...world.env }, quietStreams().streams);
    const opened = await openCache(url, context);
    expect(opened.name).toBe(`http://alice:<redacted>@127.0.0.1:${nginx.port}/c`);
    expect(opened.url).toBe(url);
  });

  it("a command's stdout and stderr redact whatever a message quotes: a URL's password, a token registered at run time", () => {
    const { streams, written } = quietStreams();
    const context = makeContext({}, {}, streams);
    registerSecret('registered-token-0a1b2c3d');
    context.stdout.write(`result for ${url}\n`);
    context.stderr.write(`log about ${url} with registered-token-0a1b2c3d\n`);
    context.log(`line about ${url}`);
    expect(written.join('')).toBe(
      `result for http://alice:<redacted>@127.0.0.1:${nginx.port}/c\n` +
        `log about http://alice:<redacted>@127.0.0.1:${nginx.port}/c with <redacted>\n` +
        `line about http://alice:<redacted>@127.0.0.1:${nginx.port}/c\n`,
    );
  });
});

function quietStreams(): { streams: ContextStreams; written: string[] } {
  const written: string[] = [];
  const sink = { write: (text: string) => written.push(text), isTTY: false };
  return { streams: { stdout: sink, stderr: sink, stdin: Readable.from([]) }, written };
}
