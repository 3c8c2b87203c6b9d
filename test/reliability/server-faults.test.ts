import { buildWithNix } from '../helpers/nix.js';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../helpers/loopback.js';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpCache } from '../../src/caches/http.js';
import { UserError } from '../../src/errors.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import type { CliResult } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { makePrivateTls, startHttps, type PrivateTls } from '../helpers/tls.js';
import { mountSmallTmpfs } from '../helpers/tmpfs.js';
import { buildChain, checkCacheConsistent, directoryCache, httpReader } from './consistency.js';

/** What the user sees on a failure: exit 1, a first line `cachix: …` matching, no stack trace. */
function expectOneLineError(result: CliResult, pattern: RegExp): string {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.trim().split('\n');
  const errorLine = lines.find((line) => line.startsWith('cachix: '));
  expect(errorLine, result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr).not.toMatch(/<html|<body|<!DOCTYPE/i);
  return errorLine!;
}

async function listen(server: Server): Promise<{ url: string; stop(): Promise<void> }> {
  const listening = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${listening.port}`, stop: listening.stop };
}

/** Passes a request on to `upstream` (nginx) unchanged, body streamed both ways. */
function forwardTo(upstream: string, req: IncomingMessage, res: ServerResponse): void {
  const target = new URL(upstream);
  const outgoing = httpRequest(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  outgoing.on('error', () => res.destroy());
  req.pipe(outgoing);
}

const HTML_502 =
  '<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n';

let world: CachixEnv;
let nginx: RunningNginx;
let path: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  [nginx, path] = await Promise.all([
    startNginx(),
    buildWithNix('faults', 'mkdir -p $out; head -c 1500000 /dev/urandom > $out/blob; echo small > $out/note'),
  ]);
});
afterAll(async () => Promise.all([world?.cleanup(), nginx?.stop()]));

/** For a push to a URL (no config entry) any well-formed key will do: the one of some cache made here. */
async function anySigningKey(): Promise<string> {
  return /signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
}

/** A fresh cache on nginx under `sub`, created directly (not through the faulty front). */
async function nginxCache(name: string, sub: string): Promise<{ publicKey: string; url: string }> {
  const url = `${nginx.url}/${sub}`;
  const publicKey = expectOk(await world.create(name, url), `create ${name}`).stdout.trim();
  return { publicKey, url };
}

async function expectNginxConsistent(sub: string): Promise<number> {
  const local = directoryCache(join(nginx.root, sub));
  const report = await checkCacheConsistent(local.listNarinfos, httpReader(`${nginx.url}/${sub}`), { listNars: local.listNars });
  expect(report.problems).toEqual([]);
  return report.narinfos;
}

describe('slow servers: a timeout, then a clear error or recovery, never a hang', () => {
  it('a 3 s delay on nix-cache-info: the push waits and completes', async () => {
    await nginxCache('slow', 'slow');
    // Our own delaying front: holds GET nix-cache-info for 3 s, then forwards it to nginx.
    const slow = await listen(
      createServer((req, res) => {
        if (req.method === 'GET' && req.url?.endsWith('nix-cache-info')) setTimeout(() => forwardTo(nginx.url, req, res), 3000);
        else forwardTo(nginx.url, req, res);
      }),
    );
    try {
      const started = Date.now();
      const result = await world.run(['push', `${slow.url}/slow`, path], { env: { CACHIX_SIGNING_KEY: await anySigningKey() } });
      expectOk(result, 'push through a slow server');
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(3000);
      expect(elapsed).toBeLessThan(30_000);
      expect(result.stderr).not.toMatch(/retry/);
      expect(await expectNginxConsistent('slow')).toBe(1);
    } finally {
      await slow.stop();
    }
  });

  it('a server that never answers: the request times out and ends in one UserError within the retry budget', async () => {
    const silent = await listen(createServer(() => undefined));
    try {
      const cache = createHttpCache(new URL(silent.url), {
        retry: { baseMs: 50, capMs: 100, budgetMs: 1500, log: () => undefined },
        timeouts: { headersMs: 400, bodyMs: 400 },
      });
      const started = Date.now();
      const error = await cache.info().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(
        /^reading from http:\/\/127\.0\.0\.1:\d+ failed \d+ times in \d+ s; last error: .*(timeout|Timeout)/,
      );
      expect(elapsed).toBeLessThan(5000);
      await cache.close?.();
    } finally {
      await silent.stop();
    }
  });

  it('a body that stalls after the headers: the read times out instead of hanging', async () => {
    const stalling = await listen(
      createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('StoreDir: /nix/store\n'); // …and never the rest
      }),
    );
    try {
      const cache = createHttpCache(new URL(stalling.url), {
        retry: { baseMs: 50, capMs: 100, budgetMs: 1000, log: () => undefined },
        timeouts: { headersMs: 400, bodyMs: 400 },
      });
      const started = Date.now();
      const error = await cache.info().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(
        /^reading http:\/\/127\.0\.0\.1:\d+\/nix-cache-info failed after 21 bytes: Body Timeout Error$/,
      );
      expect(Date.now() - started).toBeLessThan(5000);
      await cache.close?.();
    } finally {
      await stalling.stop();
    }
  });
});

describe('HTML error pages and bad JSON', () => {
  it('two 502s with an HTML page on PUT: retried, the push completes, no HTML printed', async () => {
    const { url } = await nginxCache('html502', 'html502');
    const proxy = await startFaultProxy(url);
    try {
      const signingKey = await anySigningKey();
      // These are the retry's own waits (1 s ceiling), so two of them are quick.
      proxy.addRule({
        method: 'PUT',
        path: '/nar/',
        times: 2,
        action: { kind: 'status', status: 502, headers: { 'content-type': 'text/html' }, body: HTML_502 },
      });
      const result = expectOk(
        await world.run(['push', `${proxy.url}/html502`, path], { env: { CACHIX_SIGNING_KEY: signingKey } }),
        'push through 502s',
      );
      expect(result.stderr).toMatch(/answered 502; retry 1 in/);
      expect(result.stderr).not.toMatch(/<html|<!DOCTYPE/i);
      expect(await expectNginxConsistent('html502')).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  it('502 HTML pages that never stop: one UserError once the retry budget is spent, without the HTML', async () => {
    const gateway = await listen(
      createServer((req, res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end(HTML_502);
      }),
    );
    try {
      const cache = createHttpCache(new URL(gateway.url), { retry: { baseMs: 20, capMs: 50, budgetMs: 300, log: () => undefined } });
      const error = await cache.info().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(
        /^reading from http:\/\/127\.0\.0\.1:\d+ failed \d+ times in \d+ s; last error: GET http:\/\/127\.0\.0\.1:\d+\/nix-cache-info answered 502$/,
      );
      await cache.close?.();
    } finally {
      await gateway.stop();
    }
  });

  it('a 400 with an HTML page on PUT: one line naming the request and status, nothing half-stored', async () => {
    const { url } = await nginxCache('html400', 'html400');
    const proxy = await startFaultProxy(url);
    try {
      const signingKey = await anySigningKey();
      proxy.addRule({
        method: 'PUT',
        path: '/nar/',
        action: {
          kind: 'status',
          status: 400,
          headers: { 'content-type': 'text/html' },
          body: '<html><body><h1>400 Bad Request</h1></body></html>',
        },
      });
      const result = await world.run(['push', `${proxy.url}/html400`, path], { env: { CACHIX_SIGNING_KEY: signingKey } });
      expectOneLineError(result, /PUT http:\/\/127\.0\.0\.1:\d+\/html400\/nar\/[0-9a-z]{52}\.nar\.zst answered 400/);
      expect(result.stderr).not.toContain('--verbose');
      expect(await expectNginxConsistent('html400')).toBe(0);
    } finally {
      await proxy.stop();
    }
  });

  describe('a server pretending to be the cachix API', () => {
    let fake: { url: string; stop(): Promise<void> };
    let signingKey: string;
    beforeAll(async () => {
      fake = await listen(
        createServer((req, res) => {
          if (req.url === '/api/v1/cache/htmlcache') {
            res.writeHead(200, { 'content-type': 'text/html' });
            res.end('<html><body>Welcome to our portal</body></html>');
          } else if (req.url === '/api/v1/cache/truncated') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{"name": "truncated", "uri": "https://trunc');
          } else if (req.url === '/api/v1/cache/wrongshape') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{"hello": "world"}');
          } else {
            res.writeHead(404).end();
          }
        }),
      );
      const generated = expectOk(await world.create('apikey'), 'create');
      expect(generated.stdout).toMatch(/^apikey-1:/);
      signingKey = /\[caches\.apikey\][^[]*signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
    });
    afterAll(async () => fake?.stop());

    for (const [name, pattern] of [
      ['htmlcache', /cachix API at http:\/\/127\.0\.0\.1:\d+ answered GET cache with something that is not JSON/],
      ['truncated', /cachix API at http:\/\/127\.0\.0\.1:\d+ answered GET cache with something that is not JSON/],
      ['wrongshape', /cachix API at http:\/\/127\.0\.0\.1:\d+ described cache wrongshape without uri or publicSigningKeys/],
    ] as const) {
      it(`GET /api/v1/cache/${name} answers ${name === 'htmlcache' ? '<html>' : name === 'truncated' ? 'cut-off JSON' : 'JSON of another shape'}: one line naming the host`, async () => {
        const result = await world.run(['push', name, path], { env: { CACHIX_HOST: fake.url, CACHIX_SIGNING_KEY: signingKey } });
        expectOneLineError(result, pattern);
        expect(result.stderr).not.toContain('--verbose');
      });
    }
  });
});

describe('redirects', () => {
  let redirector: { url: string; stop(): Promise<void> } | undefined;
  afterAll(async () => redirector?.stop());

  async function startRedirector(rule: (req: IncomingMessage) => number | undefined, target: string): Promise<string> {
    await redirector?.stop();
    redirector = await listen(
      createServer((req, res) => {
        const status = rule(req);
        if (status === undefined) return forwardTo(target, req, res);
        req.resume();
        res.writeHead(status, { location: `${target}${req.url}` });
        res.end(`<html><body>moved</body></html>`);
      }),
    );
    return redirector.url;
  }

  for (const status of [301, 302, 307]) {
    it(`${status} on GET nix-cache-info: one line naming where it points, nothing stored`, async () => {
      const { url } = await nginxCache(`redirget${status}`, `redirget${status}`);
      const signingKey = await anySigningKey();
      const front = await startRedirector((req) => (req.url?.endsWith('nix-cache-info') ? status : undefined), nginx.url);
      const result = await world.run(['push', `${front}/redirget${status}`, path], { env: { CACHIX_SIGNING_KEY: signingKey } });
      expectOneLineError(
        result,
        new RegExp(
          `redirects GET nix-cache-info to ${nginx.url.replace(/[.]/g, '\\.')}/redirget${status}/nix-cache-info \\(HTTP ${status}\\)`,
        ),
      );
      expect(await expectNginxConsistent(`redirget${status}`)).toBe(0);
      expect(url).toContain(`redirget${status}`);
    });
  }

  it('307 on PUT only (reads pass): one line, no narinfo without its NAR', async () => {
    await nginxCache('redirput', 'redirput');
    const signingKey = await anySigningKey();
    const front = await startRedirector((req) => (req.method === 'PUT' ? 307 : undefined), nginx.url);
    const result = await world.run(['push', `${front}/redirput`, path], { env: { CACHIX_SIGNING_KEY: signingKey } });
    expectOneLineError(result, /redirects PUT nar\/[0-9a-z]{52}\.nar\.zst to .* \(HTTP 307\)/);
    expect(await expectNginxConsistent('redirput')).toBe(0);
  });
});

describe('TLS with a private CA', () => {
  let tls: PrivateTls;
  let front: { url: string; stop(): Promise<void> };
  beforeAll(async () => {
    tls = await makePrivateTls();
    // https in front of nginx: everything forwarded, as a TLS-terminating proxy would.
    front = await startHttps(tls, (req, res) => forwardTo(nginx.url, req, res));
  });
  afterAll(async () => Promise.all([front?.stop(), tls?.cleanup()]));

  it('without NODE_EXTRA_CA_CERTS: one line saying the certificate is not trusted, and what to set', async () => {
    const result = await world.run(['create', 'tlsfail', '--url', `${front.url}/tls-fail`], { env: { NODE_EXTRA_CA_CERTS: '' } });
    const line = expectOneLineError(result, /certificate/i);
    expect(line).toContain(front.url);
    expect(result.stderr).toContain('NODE_EXTRA_CA_CERTS');
    await expect(readdir(join(nginx.root, 'tls-fail'))).rejects.toThrow('ENOENT');
  });

  it('with NODE_EXTRA_CA_CERTS=ca.pem: create and push work over https', async () => {
    const env = { NODE_EXTRA_CA_CERTS: tls.caPath };
    expectOk(await world.run(['create', 'tlsok', '--url', `${front.url}/tls-ok`], { env }), 'create over https');
    const pushed = expectOk(await world.run(['push', 'tlsok', path], { env }), 'push over https');
    expect(pushed.stderr).toMatch(/pushed 1 paths/);
    expect(await expectNginxConsistent('tls-ok')).toBe(1);
  });
});

describe('a disk that fills up', () => {
  it('a file cache on a 4 MB tmpfs: "no space left", no narinfo without its NAR, no temp files left', async () => {
    const disk = await mountSmallTmpfs('4m');
    try {
      const chain = await buildChain('diskfull', 3, 2);
      const cacheDir = join(disk.dir, 'cache');
      expectOk(await world.create('smalldisk', `file://${cacheDir}`), 'create on tmpfs');
      const result = await world.run(['push', 'smalldisk', '-j', '1', chain[chain.length - 1]!]);
      expectOneLineError(result, new RegExp(`no space left on the device holding ${cacheDir.replace(/[.]/g, '\\.')}`));
      const local = directoryCache(cacheDir);
      const report = await checkCacheConsistent(local.listNarinfos, local.read, { listNars: local.listNars });
      expect(report.problems).toEqual([]);
      expect(report.narinfos).toBeLessThan(3);
      expect(await local.tempFiles()).toEqual([]);
    } finally {
      await disk.cleanup();
    }
  });
});
