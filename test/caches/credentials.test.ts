import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, isOnApiHost } from '../../src/caches/credentials.js';
import { createHttpCache } from '../../src/caches/http.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix } from '../helpers/nix.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';

const GLOBAL_TOKEN = 'cachix-org-token-0a1b2c3d4e5f';
const CACHE_TOKEN = 'per-cache-token-9f8e7d6c5b4a';

let world: CachixEnv;
let open: RunningNginx;
let guarded: RunningNginx;
let paths: string[];

beforeAll(async () => {
  world = await makeCachixEnv();
  [open, guarded] = await Promise.all([startNginx(), startNginx({ bearerToken: GLOBAL_TOKEN })]);
  paths = await Promise.all(['cred-a', 'cred-b', 'cred-c'].map((name) => buildWithNix(name, `echo ${name} > $out`)));
  expectOk(await world.run(['authtoken', '--stdin'], { input: GLOBAL_TOKEN }), 'authtoken');
}, 120_000);
afterAll(async () => Promise.all([world?.cleanup(), open?.stop(), guarded?.stop()]));

describe('which token an HTTP cache is sent', () => {
  it('a push with only the stored cachix token sends no Authorization at all; with a per-cache token, exactly that one', async () => {
    expectOk(await world.create('third', `${open.url}/third`), 'create');
    expectOk(await world.run(['push', 'third', paths[0]!]), 'push with only the global token');
    const before = await open.requests();
    expect(before.filter((request) => request.method === 'PUT').length).toBeGreaterThan(0);
    expect(before.map((request) => request.authorization).filter(Boolean)).toEqual([]);

    expectOk(await world.run(['authtoken', '--cache', 'third', '--stdin'], { input: CACHE_TOKEN }), 'authtoken --cache');
    expectOk(await world.run(['push', 'third', paths[1]!]), 'push with a per-cache token');
    const after = (await open.requests()).slice(before.length);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after.map((request) => request.authorization))).toEqual(new Set([`Bearer ${CACHE_TOKEN}`]));
  });

  it('a server that wants the old global token refuses, and the hint says how to give it to this cache', async () => {
    expectOk(await world.create('wants-global', `${guarded.url}/w`, { env: { CACHIX_AUTH_TOKEN: GLOBAL_TOKEN } }), 'create');
    const refused = await world.run(['push', 'wants-global', paths[2]!]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused our credentials/);
    expect(refused.stderr).toContain('cachix authtoken --cache wants-global --stdin');
    expect(refused.stderr).not.toContain(GLOBAL_TOKEN);
    // CACHIX_AUTH_TOKEN on the command that names the cache is still sent.
    expectOk(await world.run(['push', 'wants-global', paths[2]!], { env: { CACHIX_AUTH_TOKEN: GLOBAL_TOKEN } }), 'push with the env token');
  });

  it('authtoken --cache refuses a cache the config does not know, listing those it does', async () => {
    const result = await world.run(['authtoken', '--cache', 'thrid', '--stdin'], { input: CACHE_TOKEN });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no cache named "thrid"/);
    expect(result.stderr).toMatch(/configured caches: .*third/);
  });
});

describe('where the global token may go', () => {
  it('the API host and its subdomains over https, nothing else', () => {
    expect(isOnApiHost(new URL('https://cachix.org/api'), 'https://cachix.org')).toBe(true);
    expect(isOnApiHost(new URL('https://mycache.cachix.org'), 'https://cachix.org')).toBe(true);
    expect(isOnApiHost(new URL('http://mycache.cachix.org'), 'https://cachix.org')).toBe(false);
    expect(isOnApiHost(new URL('https://evilcachix.org'), 'https://cachix.org')).toBe(false);
    expect(isOnApiHost(new URL('https://cachix.org.evil.net'), 'https://cachix.org')).toBe(false);
    expect(isOnApiHost(new URL('http://127.0.0.1:9/c'), 'http://127.0.0.1:9')).toBe(true);
  });

  it('credentials over plain http to a host that is not loopback get one warning line', async () => {
    const warnings: string[] = [];
    const cache = createHttpCache(new URL('http://cache.invalid/x'), { token: 't0ken-for-warning', warn: (line) => warnings.push(line) });
    await cache.info().catch(() => undefined);
    await cache.close?.();
    expect(warnings).toEqual([
      'warning: credentials for http://cache.invalid/x go over plain http, readable by anyone on the way; use https',
    ]);
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
  });
});
