import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { listenOnLoopback, type Listening } from '../helpers/loopback.js';
import { buildWithNix } from '../helpers/nix.js';

/*
 * A web server that answers 200 with an HTML page to every request (a catch-all route, a
 * captive portal, a wrong URL on a static site) is not a binary cache: every command says so in
 * one line and exits non-zero, instead of counting the page as a cache's answer.
 */

const PAGE = '<!doctype html>\n<html><head><title>Welcome</title></head><body>It works: https://example.com</body></html>\n';
const CACHE_INFO = 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n';

let world: CachixEnv;
let server: Listening;
let path: string;
let signingKey: string;
let publicKey: string;
const received: string[] = [];

beforeAll(async () => {
  world = await makeCachixEnv();
  server = await listenOnLoopback(
    createServer((request, response) => {
      received.push(`${request.method} ${request.url}`);
      request.resume();
      // /halfway/ has a real nix-cache-info, and a page for everything else (narinfos included).
      if (request.url === '/halfway/nix-cache-info') {
        response.writeHead(200, { 'content-type': 'text/x-nix-cache-info' }).end(CACHE_INFO);
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(request.method === 'HEAD' ? undefined : PAGE);
    }),
  );
  path = await buildWithNix('not-a-cache', 'echo not a cache > $out');
  publicKey = expectOk(await world.create('keyholder'), 'create keyholder').stdout.trim();
  const { readFile } = await import('node:fs/promises');
  signingKey = /signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
}, 120_000);
afterAll(async () => Promise.all([world?.cleanup(), server?.stop()]));

const base = (folder: string): string => `http://127.0.0.1:${server.port}/${folder}`;

describe('a server answering 200 with HTML to everything', () => {
  it('push: "not a binary cache", one line and a hint, exit 1, nothing uploaded', async () => {
    const result = await world.run(['push', base('c'), path], { env: { CACHIX_SIGNING_KEY: signingKey } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `cachix: not a binary cache at ${base('c')}: its nix-cache-info is an HTML page\n` +
        "  check the URL: it must be the folder that holds nix-cache-info, as in Nix's substituters\n",
    );
    expect(received.filter((line) => line.startsWith('PUT'))).toEqual([]);
  });

  it('a real nix-cache-info but HTML narinfos: push says the narinfo is a page, instead of "already in"', async () => {
    const result = await world.run(['push', base('halfway'), path], { env: { CACHIX_SIGNING_KEY: signingKey } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`^cachix: not a binary cache at ${base('halfway')}: [a-z0-9]{32}\\.narinfo is an HTML page, not a narinfo\\n`),
    );
    expect(result.stderr).not.toContain('already in');
    expect(received.filter((line) => line.startsWith('PUT'))).toEqual([]);
  });

  it('verify with a pinned key (no nix-cache-info asked): one line, not a FAIL per path', async () => {
    const result = await world.run(['verify', base('c'), path, '--public-key', publicKey]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^cachix: not a binary cache at ${base('c')}: [a-z0-9]{32}\\.narinfo is an HTML page\\n`));
    expect(result.stdout).toBe('');
  });

  it('use: the same line', async () => {
    const result = await world.run(['use', base('c'), '--public-key', publicKey, '-m', 'user-nixconf']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cachix: not a binary cache at ${base('c')}: its nix-cache-info is an HTML page`);
  });
});
