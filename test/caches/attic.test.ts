import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSigningKey, generateSigningKey } from '../../src/nix/signing.js';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { buildTestClosure, buildWithNix, nixClosure, NIX_FEATURES, NO_SUBSTITUTERS, run } from '../helpers/nix.js';
import { substituteThenDiscard } from '../helpers/substitute.js';
import { cachix } from '../helpers/cli.js';
import { makeNixConfDirs, nixShowConfig, removeDir } from '../helpers/nix-user.js';

/**
 * Pushing to an attic server. No attic server can be installed here: the double follows attic's
 * server source (see test/helpers/attic-double.ts), compresses and signs with its own key, and
 * serves what it holds as a Nix binary cache that real Nix substitutes from.
 */
const PUSH_TOKEN = 'attic-push-token-0123456789';
const PULL_TOKEN = 'attic-pull-token-0123456789';
const CREATE_TOKEN = 'attic-create-token-0123456789';

let attic: AtticDouble;
let world: CachixEnv;

beforeAll(async () => {
  attic = await startAtticDouble({
    caches: [
      { name: 'main', isPublic: true },
      { name: 'private', isPublic: false },
      { name: 'filtered', isPublic: true, upstreamCacheKeyNames: ['upstream.example-1'] },
    ],
    tokens: {
      [PUSH_TOKEN]: { pull: true, push: true },
      [PULL_TOKEN]: { pull: true },
      [CREATE_TOKEN]: { pull: true, push: true, createCache: true },
    },
  });
  world = await makeCachixEnv();
});
afterAll(async () => {
  await attic?.stop();
  await world?.cleanup();
});

function push(cache: string, paths: string[], env: NodeJS.ProcessEnv = { CACHIX_AUTH_TOKEN: PUSH_TOKEN }) {
  return world.run(['push', attic.cacheUrl(cache), ...paths], { env });
}

function uploadsOf(hashPart: string) {
  return attic.uploads.filter((upload) => upload.storePathHash === hashPart);
}

const hashPart = (path: string): string => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

describe('push to attic', () => {
  let closure: { top: string; lib: string; data: string };

  beforeAll(async () => {
    closure = await buildTestClosure('attic');
  });

  it('uploads the closure uncompressed; real Nix substitutes it trusting only the server key', async () => {
    const result = expectOk(await push('main', [closure.top]), 'push');
    expect(result.stderr).toMatch(/pushed 3 paths/);
    for (const path of [closure.top, closure.lib, closure.data]) {
      const uploads = uploadsOf(hashPart(path));
      expect(uploads.map((upload) => [upload.status, upload.form, upload.kind])).toEqual([[200, 'header', 'Uploaded']]);
    }
    const substituted = await substituteThenDiscard(closure.top, attic.substituterUrl('main'), attic.publicKey('main'));
    expect(substituted.ok, substituted.stderr).toBe(true);
  });

  it('a second push uploads nothing', async () => {
    const before = attic.uploads.length;
    const result = expectOk(await push('main', [closure.top]), 'second push');
    expect(result.stderr).toMatch(/pushed 0 paths.*skipped 3/);
    expect(attic.uploads.length).toBe(before);
  });

  it('a NAR the server already holds for another cache is deduplicated after the body proves it', async () => {
    const result = expectOk(await push('private', [closure.data]), 'push to private');
    expect(result.stderr).toMatch(/pushed 1 paths/);
    const uploads = uploadsOf(hashPart(closure.data)).filter((upload) => upload.cache === 'private');
    expect(uploads.map((upload) => [upload.status, upload.kind])).toEqual([[200, 'Deduplicated']]);
  });

  it('verify reads back what the server serves and checks it against its published key', async () => {
    const result = await world.run(['verify', '-r', attic.cacheUrl('main'), closure.top], { env: { CACHIX_AUTH_TOKEN: PUSH_TOKEN } });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(
      [closure.top, closure.lib, closure.data]
        .sort()
        .map((path) => `${path} ok`)
        .sort(),
    );
  });

  it('another server key is not trusted: Nix refuses what the server signed', async () => {
    const otherKey = 'other-1:' + Buffer.alloc(32, 7).toString('base64');
    const substituted = await substituteThenDiscard(closure.lib, attic.substituterUrl('main'), otherKey);
    expect(substituted.ok).toBe(false);
  });
});

describe('the metadata in the body (preamble)', () => {
  it('a path with many references sends its 4 KiB+ JSON in the preamble form, and Nix substitutes it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'attic-refs-'));
    const salt = `${process.pid}-${Date.now()}`;
    const files = Array.from({ length: 90 }, (_, index) => join(dir, `attic-reference-with-a-longish-name-${index}`));
    await Promise.all(files.map((file, index) => writeFile(file, `reference ${index} ${salt}\n`)));
    // One nix-store --add for all of them: it prints their store paths in the order given.
    const refs = (await run('nix-store', ['--add', ...files])).trim().split('\n');
    expect(refs).toHaveLength(90);
    await rm(dir, { recursive: true, force: true });
    const script = refs.map((_, index) => `echo $dep${index} >> $out`).join('\n');
    const top = await buildWithNix('attic-many-references', `: > $out\n${script}`, { deps: refs });
    expect((await nixClosure(top)).length).toBe(91);

    const result = expectOk(await push('main', [top]), 'push');
    expect(result.stderr).toMatch(/pushed 91 paths/);
    const [upload] = uploadsOf(hashPart(top));
    expect(upload).toMatchObject({ status: 200, form: 'preamble', kind: 'Uploaded' });
    expect(upload!.preambleSize).toBeGreaterThanOrEqual(4096);
    // The small ones still go in the header.
    expect(uploadsOf(hashPart(refs[0]!))[0]).toMatchObject({ status: 200, form: 'header' });
    const substituted = await substituteThenDiscard(top, attic.substituterUrl('main'), attic.publicKey('main'));
    expect(substituted.ok, substituted.stderr).toBe(true);
  });
});

describe('what the server refuses (the double, as attic)', () => {
  const put = (headers: Record<string, string>, body: Buffer) =>
    fetch(`${attic.endpoint}_api/v1/upload-path`, { method: 'PUT', headers: { authorization: `bearer ${PUSH_TOKEN}`, ...headers }, body });
  const narInfo = (body: Buffer, changes: Record<string, unknown> = {}) =>
    JSON.stringify({
      cache: 'main',
      store_path_hash: '0'.repeat(32),
      store_path: `/nix/store/${'0'.repeat(32)}-x`,
      references: [],
      system: null,
      deriver: null,
      sigs: [],
      ca: null,
      nar_hash: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      nar_size: body.length,
      ...changes,
    });

  it('a body whose hash or size is not the declared one, a wrong preamble size, no metadata: 400', async () => {
    const body = Buffer.from('not really a NAR, but hashed as one');
    const wrongHash = await put({ 'x-attic-nar-info': narInfo(body, { nar_hash: `sha256:${'1'.repeat(64)}` }) }, body);
    expect(wrongHash.status).toBe(400);
    expect(await wrongHash.json()).toMatchObject({ error: 'RequestError', message: expect.stringMatching(/Bad NAR Hash or Size/) });
    const shortBody = await put({ 'x-attic-nar-info': narInfo(body, { nar_size: body.length + 1 }) }, body);
    expect(shortBody.status).toBe(400);
    const info = Buffer.from(narInfo(body));
    const badPreamble = await put(
      { 'x-attic-nar-info-preamble-size': String(info.length + 100) },
      Buffer.concat([info, body]).subarray(0, info.length + 50),
    );
    expect(badPreamble.status).toBe(400);
    expect((await put({}, body)).status).toBe(400);
    const fine = await put({ 'x-attic-nar-info-preamble-size': String(info.length) }, Buffer.concat([info, body]));
    expect(fine.status).toBe(200);
    expect(await fine.json()).toMatchObject({ kind: 'Uploaded' });
  });
});

describe('a store path changed after it was built', () => {
  it('is refused before its last byte: the server stores nothing of it', async () => {
    const path = await buildWithNix('attic-corrupt-me', 'mkdir $out; echo original > $out/file; head -c 3000000 /dev/urandom > $out/big');
    await chmod(path, 0o755);
    await chmod(join(path, 'file'), 0o644);
    await writeFile(join(path, 'file'), 'ORIGINAL\n'); // the same size: only the hash tells
    try {
      const result = await push('main', [path]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('nix-store --verify-path');
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(uploadsOf(hashPart(path)).filter((upload) => upload.status === 200)).toEqual([]);
      // Cut before its end, not sent whole for the server to refuse: a server without attic's check would keep it.
      expect(uploadsOf(hashPart(path)).map((upload) => upload.error)).not.toContainEqual(expect.stringMatching(/Bad NAR Hash or Size/));
      expect((await fetch(`${attic.substituterUrl('main')}/${hashPart(path)}.narinfo`)).status).toBe(404);
    } finally {
      await run('nix-store', ['--delete', path]).catch(() => undefined);
    }
  });
});

describe('tokens', () => {
  let path: string;
  beforeAll(async () => {
    path = await buildWithNix('attic-token', 'echo token test > $out');
  });

  it('a bad token is refused in one line, without the token, and nothing is stored', async () => {
    const badToken = 'not-a-valid-attic-token-42';
    const result = await push('private', [path], { CACHIX_AUTH_TOKEN: badToken });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/attic server .* refused the token for cache private \(HTTP 401/);
    expect(result.stderr).not.toContain(badToken);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(uploadsOf(hashPart(path))).toEqual([]);
  });

  it('a pull-only token may not push (403 from a server that lets it see the cache)', async () => {
    const result = await push('private', [path], { CACHIX_AUTH_TOKEN: PULL_TOKEN });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused the token .*HTTP 403/);
  });

  it('a per-server token in the config (authtoken --server) is used over the global one', async () => {
    const before = await readFile(world.configPath, 'utf8').catch(() => undefined);
    try {
      const stored = await world.run(['authtoken', '--server', new URL(attic.endpoint).host, '--stdin'], { input: PUSH_TOKEN });
      expectOk(stored, 'authtoken --server');
      const config = await readFile(world.configPath, 'utf8');
      expect(config).toContain(`[servers."${new URL(attic.endpoint).host}"]`);
      const result = await push('private', [path], { CACHIX_AUTH_TOKEN: 'wrong-global-token' });
      expect(result.code, result.stderr).toBe(0);
      expect(uploadsOf(hashPart(path)).map((upload) => upload.status)).toEqual([200]);
    } finally {
      // Later tests choose their token through CACHIX_AUTH_TOKEN.
      if (before === undefined) await rm(world.configPath, { force: true });
      else await writeFile(world.configPath, before, { mode: 0o600 });
    }
  });
});

describe('retries and the upstream filter', () => {
  it('a connection dropped mid-body is retried with the NAR dumped again from the store', async () => {
    const path = await buildWithNix('attic-retry', 'head -c 3000000 /dev/urandom > $out');
    attic.faults.dropUploads = 1;
    attic.faults.dropAfterBytes = 256 * 1024;
    const result = expectOk(await push('main', [path]), 'push with a dropped upload');
    expect(result.stderr).toMatch(/retry 1/);
    expect(uploadsOf(hashPart(path)).map((upload) => upload.status)).toEqual([0, 200]);
    const substituted = await substituteThenDiscard(path, attic.substituterUrl('main'), attic.publicKey('main'));
    expect(substituted.ok, substituted.stderr).toBe(true);
  });

  it('watch-exec pushes what its command builds, through the same pipeline', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'attic-watch-'));
    try {
      const file = join(dir, 'default.nix');
      const salt = `${process.pid}-${Date.now()}`;
      await writeFile(
        file,
        `derivation { name = "attic-watched"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; args = [ "-c" "echo watched > $out; :" ]; salt = "${salt}"; }`,
      );
      const result = await world.spawn(
        ['watch-exec', attic.cacheUrl('main'), '--', 'nix-build', file, '--no-out-link', ...NO_SUBSTITUTERS],
        {
          env: { CACHIX_AUTH_TOKEN: PUSH_TOKEN },
        },
      );
      expect(result.code, result.stderr).toBe(0);
      const built = result.stdout.trim().split('\n').pop()!;
      expect(built).toMatch(/^\/nix\/store\/.*-attic-watched$/);
      expect(uploadsOf(hashPart(built)).map((upload) => upload.status)).toEqual([200]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("paths signed by one of the cache's upstream keys are not pushed", async () => {
    const upstream = generateSigningKey('upstream.example-1');
    const dir = await mkdtemp(join(tmpdir(), 'attic-upstream-'));
    const keyFile = join(dir, 'key');
    await writeFile(keyFile, formatSigningKey(upstream), { mode: 0o600 });
    const base = await buildWithNix('attic-upstream-base', 'echo from upstream > $out');
    await run('nix', [...NIX_FEATURES, 'store', 'sign', '-k', keyFile, base]);
    await rm(dir, { recursive: true, force: true });
    const top = await buildWithNix('attic-upstream-top', 'echo $dep0 > $out', { deps: [base] });

    const result = expectOk(await push('filtered', [top]), 'push');
    expect(result.stderr).toMatch(/pushed 1 paths.*not pushed: 1 path .* signed by upstream\.example-1, served upstream/);
    expect(uploadsOf(hashPart(base))).toEqual([]);
    expect(uploadsOf(hashPart(top)).map((upload) => upload.status)).toEqual([200]);
  });
});

describe('create and use', () => {
  it('use writes the substituter and key from cache-config and the token to netrc; Nix substitutes the private cache', async () => {
    const dirs = await makeNixConfDirs('attic-use-');
    try {
      const path = await buildWithNix('attic-use', 'echo private data > $out');
      expectOk(await push('private', [path]), 'push to private');
      const used = await cachix(['use', attic.cacheUrl('private')], { env: { ...dirs.env, CACHIX_AUTH_TOKEN: PULL_TOKEN } });
      expect(used.code, used.stderr).toBe(0);
      expect(used.stdout + used.stderr).not.toContain(PULL_TOKEN);
      const nix = await nixShowConfig(dirs.env);
      expect(nix.get('substituters')).toContain(attic.substituterUrl('private'));
      expect(nix.get('trusted-public-keys')).toContain(attic.publicKey('private'));
      const netrcFile = nix.get('netrc-file') ?? join(dirs.confDir, 'netrc');
      expect(await readFile(netrcFile, 'utf8')).toContain(`machine 127.0.0.1 password ${PULL_TOKEN}`);

      // Real Nix with that netrc (Basic auth, the token as password) reads the private cache.
      const store = await mkdtemp(join(tmpdir(), 'attic-private-store-'));
      try {
        const common = ['--store', store, '--option', 'trusted-public-keys', attic.publicKey('private'), '--max-jobs', '0'];
        const withoutNetrc = await run('nix-store', [
          ...common,
          '--realise',
          path,
          '--option',
          'substituters',
          attic.substituterUrl('private'),
        ])
          .then(() => 'ok')
          .catch(() => 'refused');
        expect(withoutNetrc).toBe('refused');
        await run('nix-store', [
          ...common,
          '--realise',
          path,
          '--option',
          'substituters',
          attic.substituterUrl('private'),
          '--option',
          'netrc-file',
          netrcFile,
        ]);
      } finally {
        await rm(store, { recursive: true, force: true });
      }

      // remove takes out exactly what use added: the substituter, the key and our netrc entry.
      const removed = await cachix(['remove', attic.cacheUrl('private')], { env: { ...dirs.env, CACHIX_AUTH_TOKEN: PULL_TOKEN } });
      expect(removed.code, removed.stderr).toBe(0);
      const after = await nixShowConfig(dirs.env);
      expect(after.get('substituters') ?? '').not.toContain(attic.substituterUrl('private'));
      expect(after.get('trusted-public-keys') ?? '').not.toContain(attic.publicKey('private'));
      expect(await readFile(netrcFile, 'utf8').catch(() => '')).not.toContain(PULL_TOKEN);
    } finally {
      await removeDir(dirs.root);
    }
  });

  it('create registers an existing attic cache without making a signing key', async () => {
    const result = expectOk(
      await world.run(['create', 'team', '--url', attic.cacheUrl('main')], { env: { CACHIX_AUTH_TOKEN: PUSH_TOKEN } }),
      'create',
    );
    expect(result.stderr).toMatch(/registered the existing cache/);
    const config = await readFile(world.configPath, 'utf8');
    expect(config).toContain(attic.cacheUrl('main'));
    expect(config).not.toContain('signing_key');
  });

  it('create makes a missing cache when the token may, and refuses clearly when it may not', async () => {
    const refused = await world.run(['create', 'fresh', '--url', attic.cacheUrl('fresh')], { env: { CACHIX_AUTH_TOKEN: PULL_TOKEN } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/may not create it/);
    const made = expectOk(
      await world.run(['create', 'fresh', '--url', attic.cacheUrl('fresh')], { env: { CACHIX_AUTH_TOKEN: CREATE_TOKEN } }),
      'create on the server',
    );
    expect(made.stderr).toMatch(/created the cache .* on its server/);
    const path = await buildWithNix('attic-fresh', 'echo fresh > $out');
    expectOk(await world.run(['push', 'fresh', path], { env: { CACHIX_AUTH_TOKEN: CREATE_TOKEN } }), 'push to the new cache');
  });
});
