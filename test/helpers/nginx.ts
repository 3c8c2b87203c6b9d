import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NGINX = '/usr/sbin/nginx';

export interface NginxOptions {
  /** The directory served; a fresh temp dir when not given. */
  root?: string;
  /** Writes (PUT/DELETE) need `Authorization: Bearer <bearerToken>`. */
  bearerToken?: string;
  /** Writes need basic auth with these credentials. */
  basicAuth?: { login: string; password: string };
  /** Reads need the same Authorization as writes. */
  protectReads?: boolean;
  /** nginx's client_max_body_size (default 0: no limit), to make it answer 413. */
  maxBodySize?: string;
  /**
   * How the server lists folders: WebDAV PROPFIND from Debian's libnginx-mod-http-dav-ext, or
   * core nginx's `autoindex_format json`. None by default, as a plain PUT server.
   */
  listing?: 'propfind' | 'autoindex';
  /** A plain static server: no WebDAV methods at all (PUT answers 405). */
  readOnly?: boolean;
  /** nginx's keepalive_requests: requests on one connection before nginx closes it (its default 1000). */
  keepaliveRequests?: number;
}

const DAV_EXT_MODULE = '/usr/lib/nginx/modules/ngx_http_dav_ext_module.so';

export interface RunningNginx {
  url: string;
  root: string;
  port: number;
  /** Every request nginx has logged so far, with the Authorization header it carried ('' for none). */
  requests(): Promise<Array<{ method: string; uri: string; authorization: string }>>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function waitForPort(port: number, exited: () => string | undefined, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = exited();
    if (failure) throw new Error(failure);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function authorizationMap(options: NginxOptions): string {
  const expected = options.bearerToken
    ? `Bearer ${options.bearerToken}`
    : options.basicAuth
      ? `Basic ${Buffer.from(`${options.basicAuth.login}:${options.basicAuth.password}`).toString('base64')}`
      : undefined;
  if (!expected) return 'map $request_method $denied { default 0; }';
  // nginx's `if` cannot combine conditions, so one map decides from method and header together.
  // A listing (PROPFIND) is a read too: it shows names and sizes, not contents.
  const reads = options.protectReads ? '' : '"~^(GET|HEAD|PROPFIND):" 0;';
  return `map "$request_method:$http_authorization" $denied { default 1; ${reads} "~^[A-Z]+:${expected.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$" 0; }`;
}

/**
 * A real nginx taking WebDAV PUT the way Nix's `nix copy --to http://` needs it, on a free
 * 127.0.0.1 port, with every path it writes inside a fresh temp dir.
 */
export async function startNginx(rootOrOptions: string | NginxOptions = {}): Promise<RunningNginx> {
  if (!existsSync(NGINX) || spawnSync(NGINX, ['-v']).status !== 0) {
    throw new Error('these tests need nginx with the WebDAV module: install nginx: apt-get install nginx');
  }
  const options = typeof rootOrOptions === 'string' ? { root: rootOrOptions } : rootOrOptions;
  const dir = await mkdtemp(join(tmpdir(), 'cachix-nginx-'));
  const root = options.root ?? join(dir, 'root');
  await mkdir(root, { recursive: true });
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, sub));
  if (options.listing === 'propfind' && !existsSync(DAV_EXT_MODULE)) {
    throw new Error('these tests need nginx WebDAV PROPFIND: apt-get install libnginx-mod-http-dav-ext');
  }
  for (let attempt = 1; ; attempt++) {
    const started = await launchNginx(dir, root, options, await freePort());
    if (started) return started;
    if (attempt === 5) throw new Error('nginx did not start: every port tried was taken before it could bind');
  }
}

async function launchNginx(dir: string, root: string, options: NginxOptions, port: number): Promise<RunningNginx | undefined> {
  const loadModule = options.listing === 'propfind' ? `load_module ${DAV_EXT_MODULE};\n` : '';
  const listing =
    options.listing === 'propfind'
      ? 'dav_ext_methods PROPFIND OPTIONS;'
      : options.listing === 'autoindex'
        ? 'autoindex on; autoindex_format json;'
        : '';
  const config = `${loadModule}daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log ${dir}/access.log;
  log_format authorization escape=json '$request_method $uri "$http_authorization"';
  access_log ${dir}/authorization.log authorization;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${authorizationMap(options)}
  server {
    listen 127.0.0.1:${port};
    root ${root};
    keepalive_requests ${options.keepaliveRequests ?? 1000};
    location / {
      if ($denied) { return 401; }
      ${options.readOnly ? '' : 'dav_methods PUT DELETE;'}
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size ${options.maxBodySize ?? '0'};
      ${listing}
    }
  }
}
`;
  const configFile = join(dir, 'nginx.conf');
  await writeFile(configFile, config);
  const child = spawn(NGINX, ['-c', configFile, '-p', dir, '-e', `${dir}/error.log`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code) => ((exitCode = code), resolve())));
  try {
    await waitForPort(port, () => (exitCode !== undefined ? `nginx exited with ${exitCode}: ${stderr}` : undefined));
  } catch (error) {
    child.kill('SIGKILL');
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
    const message = `nginx did not start: ${(error as Error).message}\n${log}`;
    // Another process took the port between freePort's probe and nginx's bind: try another one.
    if (/Address already in use/.test(message)) return undefined;
    throw new Error(message);
  }
  // What answers may be whoever took the port first, while nginx still retries its bind.
  const server = await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' }).then(
    (response) => response.headers.get('server') ?? '',
    () => '',
  );
  if (!server.startsWith('nginx')) {
    child.kill('SIGKILL');
    await exited;
    return undefined;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    root,
    port,
    async requests() {
      const log = await readFile(join(dir, 'authorization.log'), 'utf8').catch(() => '');
      return log
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [, method, uri, authorization] = /^(\S+) (\S+) "(.*)"$/.exec(line) ?? [];
          return { method: method ?? '', uri: uri ?? '', authorization: authorization ?? '' };
        });
    },
    async stop() {
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
