import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { generateSigningKey } from '../../src/nix/signing.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildWithNix, hashOf, NIX_FEATURES, NO_SUBSTITUTERS, run } from '../helpers/nix.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';

/**
 * What Nix reads from a cache besides narinfos and NARs, written by push and read back by real
 * Nix: `nix log --store URL` (build logs), `nix store ls --store URL` (NAR listings), and the
 * debug-info index, each compared with what Nix itself writes for the same path.
 */
const BUILD_ID = '0123456789abcdef0123456789abcdef012345';
let world: CachixEnv;
let nginx: RunningNginx;
let s3: RunningS3rver;
let built: string;
let reference: string;
let referenceDir: string;

const nix = (args: string[]): Promise<string> => run('nix', [...NIX_FEATURES, ...NO_SUBSTITUTERS, ...args]);

beforeAll(async () => {
  world = await makeCachixEnv();
  [nginx, s3] = await Promise.all([startNginx(), startS3rver('extras')]);
  built = await buildWithNix(
    'extras',
    [
      'echo "the build log of extras"',
      `mkdir -p $out/bin $out/lib/debug/.build-id/ab $out/share`,
      'printf "#!/bin/sh\\necho hi\\n" > $out/bin/hi && chmod +x $out/bin/hi',
      `printf debug > $out/lib/debug/.build-id/ab/${BUILD_ID}.debug`,
      'printf 0123456789 > $out/share/10 && printf 9 > $out/share/9 && : > $out/share/empty',
      'ln -s ../bin/hi $out/share/link',
    ].join('\n'),
  );
  referenceDir = await mkdtemp(join(tmpdir(), 'cachix-extras-reference-'));
  reference = `file://${referenceDir}`;
  await nix(['copy', '--to', `${reference}?write-nar-listing=true&index-debug-info=true&compression=none`, built]);
  expectOk(await world.create('local'), 'create local');
  expectOk(await world.create('web', nginx.url), 'create web');
  expectOk(await world.create('bucket', s3.s3Url, { env: s3.env }), 'create bucket');
});

afterAll(async () => {
  await Promise.all([nginx?.stop(), s3?.stop(), world?.cleanup()]);
  if (referenceDir) await rm(referenceDir, { recursive: true, force: true });
});

async function referenceDebugInfo(): Promise<Record<string, unknown>> {
  const text = await readFile(join(referenceDir, 'debuginfo', `ab${BUILD_ID}.debug`), 'utf8');
  return JSON.parse(text) as Record<string, unknown>;
}

describe('push --logs --listings --debug-info: real Nix reads what push wrote', () => {
  const kinds = [
    { name: 'file cache', cache: 'local', env: {}, readUrl: () => `file://${join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'local')}` },
    { name: 'nginx', cache: 'web', env: {}, readUrl: () => nginx.url },
    { name: 's3rver', cache: 'bucket', env: () => s3.env, readUrl: () => s3.httpUrl },
  ];
  for (const kind of kinds) {
    it(`${kind.name}: nix log prints the build log, nix store ls lists the tree, .ls and debuginfo/ equal Nix's own`, async () => {
      const env = typeof kind.env === 'function' ? kind.env() : kind.env;
      const pushed = expectOk(await world.run(['push', kind.cache, built, '--logs', '--listings', '--debug-info'], { env }), 'push');
      expect(pushed.stderr).toMatch(/1 build logs uploaded/);
      const url = kind.readUrl();
      expect(await nix(['log', '--store', url, built])).toContain('the build log of extras');
      const listed = await nix(['store', 'ls', '--store', url, '-R', built]);
      expect(listed.split('\n').filter(Boolean).sort()).toEqual(
        [
          './bin',
          './bin/hi',
          './lib',
          './lib/debug',
          './lib/debug/.build-id',
          './lib/debug/.build-id/ab',
          `./lib/debug/.build-id/ab/${BUILD_ID}.debug`,
          './share',
          './share/10',
          './share/9',
          './share/empty',
          './share/link',
        ].sort(),
      );
      expect(await nix(['store', 'cat', '--store', url, `${built}/share/10`])).toBe('0123456789');
      const ours = await fetchText(url, `${hashOf(built)}.ls`);
      const nixs = await readFile(join(referenceDir, `${hashOf(built)}.ls`), 'utf8');
      expect(ours).toBe(nixs);
      const narInfo = parseNarInfo(await fetchText(url, `${hashOf(built)}.narinfo`));
      const debugInfo = JSON.parse(await fetchText(url, `debuginfo/ab${BUILD_ID}.debug`)) as Record<string, unknown>;
      expect(debugInfo).toEqual({ ...(await referenceDebugInfo()), archive: `../${narInfo.url}` });
    });
  }
});

async function fetchText(url: string, name: string): Promise<string> {
  if (url.startsWith('file://')) return readFile(join(url.slice('file://'.length), name), 'utf8');
  const response = await fetch(`${url}/${name}`);
  if (!response.ok) throw new Error(`GET ${url}/${name}: ${response.status}`);
  return response.text();
}

describe('listings of many small paths (prepared on the worker pool)', () => {
  it('each .ls equals the one nix copy writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cachix-extras-many-'));
    const { writeFile, mkdir } = await import('node:fs/promises');
    const files: string[] = [];
    for (let index = 0; index < 80; index++) {
      const entry = join(dir, `item-${index}`);
      if (index % 2 === 0) await writeFile(entry, `file ${index} ${process.pid} ${Date.now()}\n`);
      else {
        await mkdir(join(entry, 'sub'), { recursive: true });
        await writeFile(join(entry, 'sub', 'data'), `dir ${index} ${process.pid} ${Date.now()}\n`);
      }
      files.push(entry);
    }
    const paths = (await run('nix-store', ['--add', ...files])).trim().split('\n');
    expect(paths).toHaveLength(80);
    const many = await mkdtemp(join(tmpdir(), 'cachix-extras-many-ref-'));
    try {
      await nix(['copy', '--to', `file://${many}?write-nar-listing=true&compression=none`, ...paths]);
      expectOk(await world.run(['push', 'web', '--no-closure', '--listings', ...paths]), 'push');
      for (const path of paths) {
        expect(await fetchText(nginx.url, `${hashOf(path)}.ls`), path).toBe(await readFile(join(many, `${hashOf(path)}.ls`), 'utf8'));
      }
    } finally {
      await rm(many, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('what push --logs says and leaves out', () => {
  it('a path with no build log here is counted in the summary, not an error; without the flags nothing extra is written', async () => {
    const added = (await run('nix-store', ['--add', await mkdtempFile('no log here')])).trim();
    const result = expectOk(await world.run(['push', 'local', added, '--logs']), 'push');
    expect(result.stderr).toMatch(/0 build logs uploaded \(1 paths had none in this store\)/);
    const plain = await buildWithNix('extras-plain', 'echo plain; echo x > $out');
    expectOk(await world.run(['push', 'web', plain]), 'push without flags');
    const root = nginx.root;
    expect(await readdir(root)).not.toContain(`${hashOf(plain)}.ls`);
    expect(await readdir(join(root, 'log')).catch(() => [])).not.toContain(expect.stringContaining('extras-plain'));
  });

  it('logs = true and listings = true in the config do what the flags do', async () => {
    const config = world.configPath;
    const text = await readFile(config, 'utf8');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(config, text.replace(/(\[caches\.local\][^[]*)/, '$1logs = true\nlistings = true\n'), { mode: 0o600 });
    const withSettings = await buildWithNix('extras-settings', 'echo from the settings; echo y > $out');
    const result = expectOk(await world.run(['push', 'local', withSettings]), 'push');
    expect(result.stderr).toMatch(/1 build logs uploaded/);
    const cacheDir = join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', 'local');
    expect(await readdir(cacheDir)).toContain(`${hashOf(withSettings)}.ls`);
    expect(await nix(['log', '--store', `file://${cacheDir}`, withSettings])).toContain('from the settings');
  });

  it('s3 with log-compression=br: Nix decodes the Content-Encoding', async () => {
    // Long and repetitive, so the brotli bytes differ from the text (a short log can be stored raw inside brotli's framing).
    const lines = Array.from({ length: 100 }, (_, index) => `compressed with brotli, line ${index}`);
    const compressedLog = await buildWithNix(
      'extras-br',
      'i=0; while [ $i -lt 100 ]; do echo "compressed with brotli, line $i"; i=$((i+1)); done; echo z > $out',
    );
    expectOk(
      await world.run(['push', `${s3.s3Url}&log-compression=br&ls-compression=br`, compressedLog, '--logs', '--listings'], {
        env: { ...s3.env, CACHIX_SIGNING_KEY: await signingKeyOf('bucket') },
      }),
      'push',
    );
    expect((await nix(['log', '--store', s3.httpUrl, compressedLog])).trim().split('\n')).toEqual(lines);
    expect(await nix(['store', 'ls', '--store', s3.httpUrl, '-R', compressedLog])).toContain(compressedLog.slice('/nix/store/'.length));
  });
});

describe('a server with no route for logs or listings', () => {
  let api: CachixApiDouble;
  beforeAll(async () => {
    // The service signs: a token-only push goes through at once (a refused one is tried again, 5 s apart).
    api = await startCachixApiDouble({
      token: 'extras-token',
      caches: [{ name: 'demo', publicSigningKeys: [], managedSigningKey: generateSigningKey('demo.cachix.org-1'), isPublic: true }],
    });
  });
  afterAll(async () => api?.stop());

  it('the cachix API: said once, before anything is pushed', async () => {
    const path = await buildWithNix('extras-api', 'echo to the api; echo w > $out');
    const result = await world.run(['--host', api.url, 'push', 'cachix:demo', path, '--logs', '--listings'], {
      env: { CACHIX_AUTH_TOKEN: 'extras-token' },
    });
    expect(result.stderr.match(/has no route for build logs, NAR listings: they are not uploaded/g)).toHaveLength(1);
    expect(result.code, result.stderr).toBe(0);
    expect(api.narinfos.has(`demo/${hashOf(path)}`)).toBe(true);
  });
});

async function mkdtempFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cachix-extras-add-'));
  const file = join(dir, 'file');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(file, `${text} ${process.pid} ${Date.now()}\n`);
  return file;
}

async function signingKeyOf(cache: string): Promise<string> {
  const text = await readFile(world.configPath, 'utf8');
  const section = text.slice(text.indexOf(`[caches.${cache}]`));
  return /signing_key = "([^"]+)"/.exec(section)![1]!;
}

describe('gc takes what push wrote beside a path with the path', () => {
  it('file cache and nginx (PROPFIND): no listing, debug-info entry or log of a collected path is left', async () => {
    const webdav = await startNginx({ listing: 'propfind' });
    try {
      const gcWorld = await makeCachixEnv();
      try {
        expectOk(await gcWorld.create('gclocal'), 'create');
        expectOk(await gcWorld.create('gcweb', webdav.url), 'create');
        const kept = await buildWithNix('extras-kept', 'echo kept log; echo k > $out');
        for (const cache of ['gclocal', 'gcweb']) {
          expectOk(await gcWorld.run(['push', cache, built, kept, '--logs', '--listings', '--debug-info']), `push ${cache}`);
          expectOk(await gcWorld.run(['pin', cache, 'keep', kept]), 'pin');
          const collected = expectOk(await gcWorld.run(['gc', cache, '--older-than', '0']), `gc ${cache}`);
          expect(collected.stdout).toContain(built);
        }
        const localDir = join(gcWorld.env.XDG_DATA_HOME!, 'cachix', 'caches', 'gclocal');
        for (const dir of [localDir, webdav.root]) {
          const root = await readdir(dir);
          expect(root, dir).not.toContain(`${hashOf(built)}.ls`);
          expect(root, dir).toContain(`${hashOf(kept)}.ls`);
          expect(await readdir(join(dir, 'debuginfo')).catch(() => []), dir).toEqual([]);
          const logs = await readdir(join(dir, 'log'));
          expect(
            logs.some((name) => name.endsWith('-extras.drv')),
            dir,
          ).toBe(false);
          expect(
            logs.some((name) => name.endsWith('-extras-kept.drv')),
            dir,
          ).toBe(true);
        }
      } finally {
        await gcWorld.cleanup();
      }
    } finally {
      await webdav.stop();
    }
  });
});
