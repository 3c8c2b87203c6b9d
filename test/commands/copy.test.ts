import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk } from '../helpers/cachix-env.js';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import { CACHIX_BIN, startCachix } from '../helpers/cli.js';
import { makeHolds } from '../helpers/hold.js';
import { buildWithNix, hashOf, NIX_FEATURES, NO_SUBSTITUTERS, run } from '../helpers/nix.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';
import { substituteThenDiscard } from '../helpers/substitute.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';

/**
 * `cachix copy` between every kind of server, read back by real Nix: one small closure (dep <-
 * top, with a build log), pushed once into a file cache `src`, then copied on from there.
 */
let servers: ServerWorld;
let dep: string;
let top: string;
/** Shares no references with the closure: copied while the closure's copy fails. */
let loner: string;
const keys: Record<string, string> = {};

const fileUrl = (name: string): string => `file://${join(servers.scratch, name)}`;

/** A file cache with no key of ours: only nix-cache-info, as `nix copy` would leave it. */
async function bareFileCache(name: string): Promise<string> {
  await mkdir(join(servers.scratch, name), { recursive: true });
  await writeFile(join(servers.scratch, name, 'nix-cache-info'), 'StoreDir: /nix/store\n');
  return fileUrl(name);
}
const copy = (...args: string[]) => servers.world.run(['copy', ...args]);

async function create(name: string, url: string): Promise<string> {
  keys[name] = expectOk(await servers.world.create(name, url), `create ${name}`).stdout.trim();
  return keys[name];
}

/** Real Nix substitutes the closure of top from `url`, trusting only `key`. */
async function expectSubstitutes(url: string, key: string): Promise<void> {
  const result = await substituteThenDiscard(top, url, key);
  expect(result.ok, result.stderr).toBe(true);
}

/** Every narinfo in a file cache has its NAR and its references' narinfos beside it. */
async function expectConsistent(directory: string): Promise<string[]> {
  const names = await readdir(directory);
  const narinfos = names.filter((name) => name.endsWith('.narinfo'));
  for (const name of narinfos) {
    const text = await readFile(join(directory, name), 'utf8');
    const url = /^URL: (.*)$/m.exec(text)![1]!;
    expect((await readFile(join(directory, url))).length, `${name}'s NAR`).toBe(Number(/^FileSize: (\d+)$/m.exec(text)![1]));
    for (const reference of /^References: (.*)$/m.exec(text)![1]!.split(' ').filter(Boolean)) {
      expect(names, `${name} names ${reference}`).toContain(`${reference.slice(0, 32)}.narinfo`);
    }
  }
  return narinfos;
}

beforeAll(async () => {
  servers = await startServerWorld('copy');
  dep = await buildWithNix('copy-dep', 'echo building the dep; mkdir -p $out/share; echo dep > $out/share/name');
  top = await buildWithNix('copy-top', 'echo building the top; mkdir -p $out/bin; echo "$dep0" > $out/bin/dep', { deps: [dep] });
  loner = await buildWithNix('copy-loner', 'echo alone > $out');
  await create('src', fileUrl('src'));
  expectOk(await servers.world.run(['push', 'src', '--logs', '--listings', top, loner]), 'push to src');
});
afterAll(async () => {
  await servers?.stop();
});

describe('cachix copy between servers, read back by real Nix', () => {
  it('file -> nginx: Nix substitutes trusting only the source key, or only the destination key; a second copy uploads nothing', async () => {
    await create('web', servers.nginx.url);
    const first = expectOk(await copy('src', 'web', top), 'copy src web');
    expect(first.stderr).toMatch(/copied 2 paths .* skipped 0 already in web/);
    await expectSubstitutes(servers.nginx.url, keys.src!);
    await expectSubstitutes(servers.nginx.url, keys.web!);
    const putsBefore = (await servers.nginx.requests()).filter((request) => request.method === 'PUT').length;
    const second = expectOk(await copy('src', 'web', top), 'second copy');
    expect(second.stderr).toMatch(/copied 0 paths .* skipped 2 already in web/);
    expect((await servers.nginx.requests()).filter((request) => request.method === 'PUT').length).toBe(putsBefore);
  });

  it('nginx -> s3rver, paths named: both keys work', async () => {
    await create('bucket', servers.s3.s3Url);
    expectOk(await copy('web', 'bucket', top), 'copy web bucket');
    await expectSubstitutes(servers.s3.httpUrl, keys.web!);
    await expectSubstitutes(servers.s3.httpUrl, keys.bucket!);
  });

  it('s3rver -> file, everything the bucket lists, into a cache without a key: its signatures travel', async () => {
    const result = expectOk(await copy('bucket', await bareFileCache('from-s3')), 'copy bucket file://');
    expect(result.stderr).toMatch(/no signing key for .*: its narinfos keep the signatures of bucket only/);
    expect(result.stderr).toMatch(/copied 2 paths/);
    await expectSubstitutes(fileUrl('from-s3'), keys.bucket!);
    await expectSubstitutes(fileUrl('from-s3'), keys.src!);
  });
});

describe('cachix copy into servers that keep their own caches', () => {
  let double: CachixApiDouble | undefined;
  let attic: AtticDouble | undefined;
  afterAll(async () => {
    await double?.stop();
    await attic?.stop();
  });

  it('file -> the cachix API, signed with the cache key', async () => {
    const key = generateSigningKey('demo-1');
    const publicKey = formatPublicKey(publicKeyOf(key));
    double = await startCachixApiDouble({
      token: 'copy-token',
      caches: [{ name: 'demo', publicSigningKeys: [publicKey], isPublic: true }],
    });
    const env = { CACHIX_AUTH_TOKEN: 'copy-token', CACHIX_SIGNING_KEY: formatSigningKey(key) };
    const result = expectOk(await servers.world.run(['--host', double.url, 'copy', 'src', 'cachix:demo', top], { env }), 'copy to cachix');
    expect(result.stderr).toMatch(/copied 2 paths/);
    expect(result.stderr).toMatch(/has no route for build logs, listings or debug info/);
    await expectSubstitutes(double.uriOf('demo'), publicKey);
  });

  it('import: everything in an S3 bucket into a cachix cache', async () => {
    const env = { CACHIX_AUTH_TOKEN: 'copy-token', CACHIX_SIGNING_KEY: '' };
    const refused = await servers.world.run(['--host', double!.url, 'import', 'src', servers.s3.s3Url], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/src is not a cachix API cache: import copies into one/);
    const key = generateSigningKey('imported-1');
    await double!.stop();
    double = await startCachixApiDouble({
      token: 'copy-token',
      caches: [{ name: 'imported', publicSigningKeys: [], managedSigningKey: key, isPublic: true }],
    });
    const result = expectOk(
      await servers.world.run(['--host', double.url, 'import', '--public-key', keys.bucket!, 'imported', servers.s3.s3Url], { env }),
      'import',
    );
    expect(result.stderr).toMatch(/copied 2 paths/);
    await expectSubstitutes(double.uriOf('imported'), formatPublicKey(publicKeyOf(key)));
  });

  it('file -> attic, which signs itself', async () => {
    attic = await startAtticDouble({ caches: [{ name: 'main', isPublic: true }], tokens: { 'attic-token': { pull: true, push: true } } });
    const result = expectOk(
      await servers.world.run(['copy', 'src', attic.cacheUrl('main'), top], { env: { CACHIX_AUTH_TOKEN: 'attic-token' } }),
      'copy to attic',
    );
    expect(result.stderr).toMatch(/copied 2 paths/);
    await expectSubstitutes(attic.substituterUrl('main'), attic.publicKey('main'));
  });
});

describe('cachix copy refuses what it cannot vouch for', () => {
  let plainReady: Promise<void> | undefined;
  /** `plain`: top, dep and loner pushed uncompressed, then dep's NAR changed in place (same size). */
  function corruptedSource(): Promise<void> {
    plainReady ??= (async () => {
      await create('plain', fileUrl('plain'));
      expectOk(await servers.world.run(['push', 'plain', '-m', 'none', top, loner]), 'push -m none');
      // Its narinfo loses FileHash and FileSize (Nix reads them as optional): only NarHash can tell.
      const narinfo = join(servers.scratch, 'plain', `${hashOf(dep)}.narinfo`);
      const text = await readFile(narinfo, 'utf8');
      await writeFile(narinfo, text.replace(/^File(Hash|Size): .*\n/gm, ''));
      const nar = join(servers.scratch, 'plain', /^URL: (.*)$/m.exec(text)![1]!);
      const bytes = await readFile(nar);
      bytes[bytes.indexOf('dep\n')] = 'D'.charCodeAt(0);
      await writeFile(nar, bytes);
    })();
    return plainReady;
  }

  it.each([
    ['as stored', []],
    ['compressed again (-m xz)', ['-m', 'xz']],
  ])(
    'a corrupted NAR (%s) is named, nothing of it or what needs it reaches the destination, the rest is copied, exit 1',
    async (label, flags) => {
      await corruptedSource();
      const name = `dst-${flags.length}`;
      await create(name, fileUrl(name));
      const result = await copy(...flags, 'plain', name);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${dep} in plain does not match its narinfo (NarHash`);
      expect(result.stderr).toContain(`not copied: ${top} needs ${dep}`);
      const present = await expectConsistent(join(servers.scratch, name));
      expect(present, label).toEqual([`${hashOf(loner)}.narinfo`]);
      expect((await readdir(join(servers.scratch, name, 'nar'))).length).toBe(1);
    },
  );

  it('a corrupted NAR streamed to attic fails before its end: attic has no narinfo for it', async () => {
    await corruptedSource();
    const attic = await startAtticDouble({
      caches: [{ name: 'main', isPublic: true }],
      tokens: { 'attic-token': { pull: true, push: true } },
    });
    try {
      const result = await servers.world.run(['copy', 'plain', attic.cacheUrl('main')], { env: { CACHIX_AUTH_TOKEN: 'attic-token' } });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${dep} in plain does not match its narinfo (NarHash`);
      for (const [path, status] of [
        [dep, 404],
        [top, 404],
        [loner, 200],
      ] as const) {
        expect((await fetch(`${attic.substituterUrl('main')}/${hashOf(path)}.narinfo`)).status, path).toBe(status);
      }
    } finally {
      await attic.stop();
    }
  });

  it('a path no trusted key signed is refused, unless --no-check-sigs', async () => {
    const target = await bareFileCache('unchecked');
    const refused = await copy('--public-key', keys.web!, 'src', target, loner);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${loner} in src has no signature by web-1: refused`);
    expect(await readdir(join(servers.scratch, 'unchecked')).catch(() => [])).not.toContain(`${hashOf(loner)}.narinfo`);
    expectOk(await copy('--public-key', keys.web!, '--no-check-sigs', 'src', target, loner), 'copy --no-check-sigs');
    expect(await readdir(join(servers.scratch, 'unchecked'))).toContain(`${hashOf(loner)}.narinfo`);
  });

  it('a source that cannot list asks for paths', async () => {
    const result = await copy('web', await bareFileCache('unlisted'));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot list its paths.*\n.*name the store paths to copy/);
  });
});

describe('cachix copy reports copying, not pushing', () => {
  it('plain lines (CI, a pipe): "copying N paths" and "[i/N] copied PATH", never "pushed"', async () => {
    await create('worded', fileUrl('worded'));
    const result = expectOk(await servers.world.run(['copy', 'src', 'worded', top], { env: { CI: 'true' } }), 'copy src worded');
    expect(result.stderr).toMatch(/^copying 2 paths \(/m);
    expect(result.stderr).toContain(`[2/2] copied ${top} (`);
    expect(result.stderr).not.toMatch(/push/);
  });

  it('the spinner at a terminal says "copying i/N paths"', async () => {
    if (spawnSync('sh', ['-c', 'command -v script']).status !== 0)
      throw new Error('this test needs script: install it with `apt-get install util-linux`');
    await create('spun', fileUrl('spun'));
    const env: NodeJS.ProcessEnv = { ...process.env, ...servers.world.env, TERM: 'xterm-256color' };
    delete env.CI;
    const command = [
      'stty cols 100 rows 30;',
      'exec',
      ...[process.execPath, CACHIX_BIN, 'copy', 'src', 'spun', top].map((word) => `'${word}'`),
    ].join(' ');
    const terminal = spawnSync('script', ['-qfec', command, '/dev/null'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(terminal.status, terminal.stdout + terminal.stderr).toBe(0);
    expect(terminal.stdout).toMatch(/copying [0-2]\/2 paths, /);
    expect(terminal.stdout).toMatch(/copied 2 paths/);
    expect(terminal.stdout).not.toMatch(/push/);
  });
});

describe('cachix copy carries logs and listings', () => {
  // `nix log` asks the substituters too: cache.nixos.org, unreachable here, costs seconds each time.
  it('file -> file: Nix reads the build log and the listing from the destination', async () => {
    await create('carry', fileUrl('carry'));
    const result = expectOk(await copy('src', 'carry', top), 'copy src carry');
    expect(result.stderr).toMatch(/2 build logs, 2 listings/);
    const log = await run('nix', [...NIX_FEATURES, 'log', '--store', fileUrl('carry'), ...NO_SUBSTITUTERS, top]);
    expect(log).toContain('building the top');
    const listing = await run('nix', [...NIX_FEATURES, 'store', 'ls', '--store', fileUrl('carry'), '-R', top]);
    expect(listing).toContain('./bin/dep');
  });

  it('s3rver storing them compressed (ls-compression=br, log-compression=xz) -> file: decoded, Nix reads them from the destination', async () => {
    await create('packed', `${servers.s3.s3Url.replace('?', '/packed?')}&ls-compression=br&log-compression=xz`);
    expectOk(await servers.world.run(['push', 'packed', '--logs', '--listings', top]), 'push to packed');
    await create('unpacked', fileUrl('unpacked'));
    const result = expectOk(await copy('packed', 'unpacked', top), 'copy packed unpacked');
    expect(result.stderr).toMatch(/2 build logs, 2 listings/);
    // Stored plain, as push writes a file cache: the bytes themselves, not only what Nix makes of them.
    const directory = join(servers.scratch, 'unpacked');
    expect(JSON.parse(await readFile(join(directory, `${hashOf(top)}.ls`), 'utf8'))).toMatchObject({ version: 1 });
    const logs = await readdir(join(directory, 'log'));
    const topLog = logs.find((name) => name.endsWith('-copy-top.drv'));
    // Whole, byte for byte as push wrote it into the file cache src (xz keeps a short log readable inside its framing).
    expect(await readFile(join(directory, 'log', topLog!), 'utf8')).toBe(
      await readFile(join(servers.scratch, 'src', 'log', topLog!), 'utf8'),
    );
    const log = await run('nix', [...NIX_FEATURES, 'log', '--store', fileUrl('unpacked'), ...NO_SUBSTITUTERS, top]);
    expect(log).toContain('building the top');
    const listing = await run('nix', [...NIX_FEATURES, 'store', 'ls', '--store', fileUrl('unpacked'), '-R', top]);
    expect(listing).toContain('./bin/dep');
  });
});

describe('SIGKILL mid-copy, then a rerun', () => {
  async function killAndRerun(point: string): Promise<void> {
    const holds = await makeHolds();
    const directory = join(servers.scratch, `killed-${point}`);
    try {
      await create(`killed-${point}`, `file://${directory}`);
      const killed = startCachix(['copy', '-j', '1', 'src', `killed-${point}`, top], { ...servers.world.env, ...holds.env(point) });
      await holds.waitHeld(point);
      killed.kill('SIGKILL');
      expect((await killed.done).signal).toBe('SIGKILL');
      const atKill = await expectConsistent(directory);
      expect(atKill.length).toBe(point === 'copy-staged' ? 0 : 1);
      const rerun = expectOk(await copy('src', `killed-${point}`, top), 'copy after the kill');
      expect(rerun.stderr).toMatch(new RegExp(`copied ${2 - atKill.length} paths .* skipped ${atKill.length} `));
      expect(await expectConsistent(directory)).toHaveLength(2);
      await expectSubstitutes(`file://${directory}`, keys.src!);
    } finally {
      await holds.cleanup();
    }
  }

  it('killed at copy-staged (a NAR checked, not yet uploaded): the destination is consistent, and a rerun completes it', async () => {
    await killAndRerun('copy-staged');
  });

  it('killed at copy-path-done (one path stored): the destination is consistent, and a rerun copies only the rest', async () => {
    await killAndRerun('copy-path-done');
  });
});
