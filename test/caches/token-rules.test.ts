import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { buildWithNix } from '../helpers/nix.js';

/*
 * Which token goes where, on every path a token takes: the global `authtoken` one (cachix API
 * only), a cache's own `auth_token` (that cache only), an attic server's `[servers.*]` token (that
 * server only, found by HOST:PORT or HOST), CACHIX_AUTH_TOKEN (the cache the command names); and
 * none of them over plain http to a host that is not loopback.
 */

const GLOBAL_TOKEN = 'global-cachix-token-5a4b3c2d1e';
const SERVER_TOKEN = 'attic-server-token-0f1e2d3c4b';
const CACHE_TOKEN = 'per-cache-token-6e5d4c3b2a19';

let world: CachixEnv;
let atticA: AtticDouble;
let atticB: AtticDouble;
let webA: RunningNginx;
let webB: RunningNginx;
let privateWeb: RunningNginx;
let path: string;
let signingKey: string;
let keyholderPublic: string;

/** Writes the config whole: the cases below each start from exactly the config they name. */
async function writeConfig(text: string): Promise<void> {
  await mkdir(dirname(world.configPath), { recursive: true });
  await writeFile(world.configPath, text, { mode: 0o600 });
}

const atticHost = (attic: AtticDouble): string => new URL(attic.endpoint).host;
const uploadsTo = (attic: AtticDouble): number => attic.uploads.filter((upload) => upload.status === 200).length;

beforeAll(async () => {
  world = await makeCachixEnv();
  // Two attic servers that would both accept the token: only the rule keeps A's token from B.
  const spec = { caches: [{ name: 'private', isPublic: false }], tokens: { [SERVER_TOKEN]: { pull: true, push: true } } };
  [atticA, atticB, webA, webB, privateWeb, path] = await Promise.all([
    startAtticDouble(spec),
    startAtticDouble(spec),
    startNginx(),
    startNginx(),
    startNginx({ bearerToken: CACHE_TOKEN, protectReads: true }),
    buildWithNix('token-rules', 'echo token rules > $out'),
  ]);
  for (const folder of ['other', 'loop']) {
    await mkdir(join(webB.root, folder), { recursive: true });
    await writeFile(join(webB.root, folder, 'nix-cache-info'), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
  }
  const created = expectOk(await world.create('keyholder'), 'create keyholder');
  expect(created.stdout).toMatch(/^keyholder-1:/);
  keyholderPublic = created.stdout.trim();
  signingKey = /signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
}, 120_000);
afterAll(async () => Promise.all([world?.cleanup(), atticA?.stop(), atticB?.stop(), webA?.stop(), webB?.stop(), privateWeb?.stop()]));

describe('attic: only the server its own token', () => {
  it("server A's [servers.*] token is never sent to server B", async () => {
    await writeConfig(`[servers."${atticHost(atticA)}"]\ntoken = "${SERVER_TOKEN}"\n`);
    const before = uploadsTo(atticB);
    const result = await world.run(['push', atticB.cacheUrl('private'), path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused|401/);
    expect(uploadsTo(atticB)).toBe(before);
  });

  it('the global `authtoken` token is never sent to an attic server', async () => {
    await writeConfig(`auth_token = "${SERVER_TOKEN}"\n`);
    const before = uploadsTo(atticB);
    const result = await world.run(['push', atticB.cacheUrl('private'), path]);
    expect(result.code).toBe(1);
    expect(uploadsTo(atticB)).toBe(before);
  });

  it('authtoken --server HOST (no port) is the token of attic+http://HOST:PORT/…', async () => {
    await writeConfig('');
    expectOk(await world.run(['authtoken', '--server', '127.0.0.1', '--stdin'], { input: SERVER_TOKEN }), 'authtoken --server');
    const result = await world.run(['push', atticA.cacheUrl('private'), path]);
    expect(result.code, result.stderr).toBe(0);
    expect(uploadsTo(atticA)).toBeGreaterThan(0);
  });

  it('a server token over plain http to a host that is not loopback is refused before anything is sent', async () => {
    await writeConfig(`[servers."attic.invalid:8080"]\ntoken = "${SERVER_TOKEN}"\n`);
    const result = await world.run(['push', 'attic+http://attic.invalid:8080/private', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'cachix: refusing to send a token to attic.invalid:8080 over plain http, where anyone on the way can read it\n' +
        "  use the server's https URL, or, on a network you trust, set CACHIX_ALLOW_HTTP_CREDENTIALS=1\n",
    );
    // Allowed: it goes on to the network (where .invalid never resolves).
    const allowed = await world.run(['push', 'attic+http://attic.invalid:8080/private', path], {
      env: { CACHIX_ALLOW_HTTP_CREDENTIALS: '1' },
    });
    expect(allowed.code).toBe(1);
    expect(allowed.stderr).toMatch(/cannot reach|ENOTFOUND|EAI_AGAIN/);
  });
});

describe('HTTP caches: only the cache its own token', () => {
  it("a cache given by URL never gets a configured cache's auth_token", async () => {
    await writeConfig(`[caches.web]\nurl = "${webA.url}/web"\nauth_token = "${CACHE_TOKEN}"\n`);
    const before = (await webB.requests()).length;
    expectOk(await world.run(['push', `${webB.url}/other`, path], { env: { CACHIX_SIGNING_KEY: signingKey } }), 'push by URL');
    const requests = (await webB.requests()).slice(before);
    expect(requests.filter((request) => request.method === 'PUT').length).toBeGreaterThan(0);
    expect(requests.map((request) => request.authorization).filter(Boolean)).toEqual([]);
  });

  it('a per-cache token over plain http to a host that is not loopback is refused', async () => {
    await writeConfig(`[caches.remote]\nurl = "http://cache.invalid/c"\nauth_token = "${CACHE_TOKEN}"\n`);
    const result = await world.run(['push', 'remote', path], { env: { CACHIX_SIGNING_KEY: signingKey } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: refusing to send a token to cache\.invalid over plain http/);
    expect(result.stderr).not.toContain(CACHE_TOKEN);
  });

  it('CACHIX_AUTH_TOKEN over plain http to a host that is not loopback is refused; to loopback it is sent', async () => {
    await writeConfig('');
    const result = await world.run(['push', 'http://cache.invalid/c', path], {
      env: { CACHIX_SIGNING_KEY: signingKey, CACHIX_AUTH_TOKEN: CACHE_TOKEN },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: refusing to send a token to cache\.invalid over plain http/);
    const before = (await webB.requests()).length;
    const path2 = await buildWithNix('token-rules-loopback', 'echo loopback > $out');
    expectOk(
      await world.run(['push', `${webB.url}/loop`, path2], { env: { CACHIX_SIGNING_KEY: signingKey, CACHIX_AUTH_TOKEN: CACHE_TOKEN } }),
      'push to loopback',
    );
    const requests = (await webB.requests()).slice(before);
    expect(new Set(requests.map((request) => request.authorization))).toEqual(new Set([`Bearer ${CACHE_TOKEN}`]));
  });
});

describe('the cachix API: the global token only over https (or loopback)', () => {
  it('--host http://NAME:PORT with a stored token is refused before anything is sent', async () => {
    await writeConfig(`auth_token = "${GLOBAL_TOKEN}"\n`);
    const result = await world.run(['--host', 'http://cachix.invalid:8080', 'push', 'cachix:somecache', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: refusing to send a token to cachix\.invalid:8080 over plain http/m);
    expect(result.stderr).not.toContain(GLOBAL_TOKEN);
  });

  it('a per-cache token for a cachix API cache, to an http API host: refused too', async () => {
    await writeConfig(`[caches.apicache]\nurl = "cachix:apicache"\nauth_token = "${CACHE_TOKEN}"\n`);
    const result = await world.run(['--host', 'http://cachix.invalid:8080', 'push', 'apicache', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cachix: refusing to send a token to cachix\.invalid:8080 over plain http/m);
  });
});

describe("cachix-action's token (`cachix authtoken TOKEN`) and a private HTTP cache", () => {
  it('a 401 gets one hint that works: the per-cache token or CACHIX_AUTH_TOKEN, and that the authtoken one is not sent here', async () => {
    await writeFile(join(privateWeb.root, 'nix-cache-info'), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    await writeConfig(`[caches.team]\nurl = "${privateWeb.url}"\npublic_key = "${keyholderPublic}"\nsigning_key = "${signingKey}"\n`);
    // What the action runs with its authToken input.
    expectOk(await world.run(['authtoken', CACHE_TOKEN]), 'authtoken TOKEN');
    const hint =
      "  store this cache's token: cachix authtoken --cache team --stdin, or set CACHIX_AUTH_TOKEN for one command; " +
      'or check the netrc file Nix reads (netrc-file, default /etc/nix/netrc); ' +
      'the token from `cachix authtoken TOKEN` is for the cachix API only and is not sent to this server\n';
    const refused = await world.run(['push', 'team', path]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`cachix: the server refused our credentials for ${privateWeb.url} (HTTP 401)\n${hint}`);
    const useRefused = await world.run(['use', 'team', '-m', 'user-nixconf']);
    expect(useRefused.code).toBe(1);
    expect(useRefused.stderr).toContain(hint);
    // Both ways the hint names work.
    expectOk(await world.run(['push', 'team', path], { env: { CACHIX_AUTH_TOKEN: CACHE_TOKEN } }), 'push with CACHIX_AUTH_TOKEN');
    expectOk(await world.run(['authtoken', '--cache', 'team', '--stdin'], { input: CACHE_TOKEN }), 'authtoken --cache team');
    const second = await buildWithNix('token-rules-team', 'echo team > $out');
    expectOk(await world.run(['push', 'team', second]), 'push with the per-cache token');
  });
});
