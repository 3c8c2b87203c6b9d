import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder, objectsUnder, type StoredFile } from '../helpers/cache-files.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { run, hashOf } from '../helpers/nix.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';
import { substituteIntoFreshStore } from '../helpers/substitute.js';
import { buildChain, checkCacheConsistent, httpReader } from '../reliability/consistency.js';

/*
 * The whole story on each kind of server, through the built CLI: two closures pushed, one pinned;
 * `info` equals a recount of the files; `gc --older-than 0` leaves exactly the pinned closure,
 * which real Nix then substitutes into a fresh store with signatures required; `delete` refuses
 * what is still referred to or pinned. The two closures are pushed once, into a file cache;
 * the file cache and each nginx start from a copy of its folder (registered under its key), so
 * only s3rver, which serves no folder, is pushed to again.
 */

interface Backend {
  url: string;
  /** The folder the server serves, which the round starts from a copy of; none for s3rver. */
  folder?: string;
  /** Where Nix (and the consistency check) reads the cache over HTTP or file://. */
  readUrl: string;
  files(): Promise<StoredFile[]>;
}

let world: CachixEnv;
let scratch: string;
let nginxPropfind: RunningNginx;
let nginxAutoindex: RunningNginx;
let s3: RunningS3rver;
let kept: string[];
let dropped: string[];
/** Both closures pushed once into a file cache, and that cache's keys. */
let pushed: { dir: string; signingKey: string; publicKey: string };

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-gc-'));
  [kept, dropped, nginxPropfind, nginxAutoindex, s3] = await Promise.all([
    buildChain('gc-kept', 3, 0),
    buildChain('gc-dropped', 3, 0),
    startNginx({ listing: 'propfind' }),
    startNginx({ listing: 'autoindex' }),
    startS3rver(),
  ]);
  Object.assign(world.env, s3.env);
  const template = 'pushed-once';
  const dir = `${scratch}/${template}`;
  expectOk(await world.run(['create', template, '--url', `file://${dir}`]), 'create (pushed once)');
  expectOk(await world.run(['push', template, kept.at(-1)!, dropped.at(-1)!]), 'push');
  const entry = (await loadConfig(world.configPath)).caches[template];
  if (!entry?.signingKey || !entry.publicKey) throw new Error(`create ${template} left no keys in ${world.configPath}`);
  pushed = { dir, signingKey: entry.signingKey, publicKey: entry.publicKey };
});
afterAll(async () => {
  await Promise.all([world?.cleanup(), nginxPropfind?.stop(), nginxAutoindex?.stop(), s3?.stop()]);
  await rm(scratch, { recursive: true, force: true });
});

const backends: Array<[string, () => Backend]> = [
  [
    'file',
    () => ({
      url: `file://${scratch}/file-cache`,
      folder: `${scratch}/file-cache`,
      readUrl: `file://${scratch}/file-cache`,
      files: () => filesUnder(`${scratch}/file-cache`),
    }),
  ],
  [
    'nginx with WebDAV PROPFIND',
    () => ({
      url: `${nginxPropfind.url}/c`,
      folder: join(nginxPropfind.root, 'c'),
      readUrl: `${nginxPropfind.url}/c`,
      files: () => filesUnder(join(nginxPropfind.root, 'c')),
    }),
  ],
  [
    'nginx with autoindex_format json',
    () => ({
      url: `${nginxAutoindex.url}/c`,
      folder: join(nginxAutoindex.root, 'c'),
      readUrl: `${nginxAutoindex.url}/c`,
      files: () => filesUnder(join(nginxAutoindex.root, 'c')),
    }),
  ],
  [
    's3rver',
    () => ({
      url: s3.s3Url.replace(`s3://${s3.bucket}?`, `s3://${s3.bucket}/c?`),
      readUrl: `${s3.httpUrl}/c`,
      files: () => objectsUnder(s3, 'c/'),
    }),
  ],
];

async function narSizes(paths: string[]): Promise<number> {
  const out = await run('nix-store', ['-q', '--size', ...paths]);
  return out
    .trim()
    .split('\n')
    .reduce((sum, line) => sum + Number(line), 0);
}

describe.each(backends)('info, pin, gc and delete on %s', (label, makeBackend) => {
  let backend: Backend;
  let publicKey: string;
  const name = `c-${label.split(' ')[0]}-${backends.findIndex(([other]) => other === label)}`;

  beforeAll(async () => {
    backend = makeBackend();
    if (backend.folder) {
      await cp(pushed.dir, backend.folder, { recursive: true });
      const register = ['create', name, '--url', backend.url];
      expectOk(await world.run(register, { env: { CACHIX_SIGNING_KEY: pushed.signingKey } }), 'register the copy');
      publicKey = pushed.publicKey;
    } else {
      publicKey = expectOk(await world.run(['create', name, '--url', backend.url]), 'create').stdout.trim();
      expectOk(await world.run(['push', name, kept.at(-1)!, dropped.at(-1)!]), 'push');
    }
  });

  async function expectInfoEqualsRecount(expectedPaths: string[]): Promise<void> {
    const info = JSON.parse(expectOk(await world.run(['info', name, '--json']), 'info').stdout);
    const files = await backend.files();
    expect(info.paths).toBe(files.filter((file) => /^[0-9a-z]{32}\.narinfo$/.test(file.name)).length);
    expect(info.paths).toBe(expectedPaths.length);
    expect(info.storedBytes).toBe(files.reduce((sum, file) => sum + file.size, 0));
    expect(info.narBytes).toBe(await narSizes(expectedPaths));
    expect(info.compression).toEqual({ zstd: expectedPaths.length });
    expect(info.problems).toEqual({ missingNars: [], missingReferences: [], unnamedNars: [], unreadableNarInfos: [] });
  }

  it('info before gc equals a recount of the files', async () => {
    await expectInfoEqualsRecount([...kept, ...dropped]);
  });

  it('pins the kept closure, and lists the pin', async () => {
    expect(expectOk(await world.run(['pin', name, 'release', kept.at(-1)!, '--keep-revisions', '2']), 'pin').stdout).toBe(
      `release ${kept.at(-1)}\n`,
    );
    const listed = expectOk(await world.run(['pin', name, '--list']), 'pin --list').stdout;
    expect(listed).toMatch(new RegExp(`^release ${kept.at(-1)} \\S+ keep=2 revisions live-revisions=1\\n$`));
  });

  it('gc --dry-run lists what would go and changes nothing', async () => {
    const before = await backend.files();
    const result = expectOk(await world.run(['gc', name, '--older-than', '0', '--dry-run']), 'gc --dry-run');
    expect(result.stdout.trim().split('\n').sort()).toEqual([...dropped].sort());
    expect(await backend.files()).toEqual(before);
  });

  it('gc --older-than 0 leaves exactly the pinned closure, which real Nix substitutes with signatures required', async () => {
    const result = expectOk(await world.run(['gc', name, '--older-than', '0']), 'gc');
    expect(result.stdout.trim().split('\n').sort()).toEqual([...dropped].sort());
    expect(result.stderr).toMatch(/deleted 3 of 6 paths and \d NAR file\(s\)/);
    const files = await backend.files();
    const narInfos = files.filter((file) => file.name.endsWith('.narinfo')).map((file) => file.name.slice(0, 32));
    expect(narInfos.sort()).toEqual(kept.map(hashOf).sort());
    const read = httpReaderOrFile(backend.readUrl);
    const report = await checkCacheConsistent(async () => narInfos.map((hash) => `${hash}.narinfo`), read, {
      listNars: async () => files.filter((file) => file.name.startsWith('nar/')).map((file) => file.name),
    });
    expect(report.problems).toEqual([]);
    // Exactly the NARs the kept narinfos name: the first path of each chain has the same bytes in
    // both, so their NAR is one file that must survive the deletion of the dropped one.
    const named = new Set<string>();
    for (const hash of narInfos) named.add(/^URL: (.*)$/m.exec(String(await read(`${hash}.narinfo`)))![1]!);
    expect(
      files
        .filter((file) => file.name.startsWith('nar/'))
        .map((file) => file.name)
        .sort(),
    ).toEqual([...named].sort());
    await expectInfoEqualsRecount(kept);
    const fresh = await substituteIntoFreshStore(kept.at(-1)!, backend.readUrl, publicKey);
    try {
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    } finally {
      await rm(fresh.root, { recursive: true, force: true });
    }
  });

  it('delete refuses a path still referred to, and a pinned one; nothing is deleted', async () => {
    const before = await backend.files();
    const referred = await world.run(['delete', name, kept[0]!]);
    expect(referred.code).toBe(1);
    expect(referred.stderr).toContain(`${kept[0]} is referred to by ${kept[1]}, which stays; nothing was deleted`);
    const pinned = await world.run(['delete', name, kept.at(-1)!]);
    expect(pinned.code).toBe(1);
    expect(pinned.stderr).toContain("is kept by the pin 'release'; nothing was deleted");
    expect(await backend.files()).toEqual(before);
  });

  it('after pin --delete, delete --recursive takes the path and its referrers, referrers first', async () => {
    expectOk(await world.run(['pin', name, 'release', '--delete']), 'pin --delete');
    const result = expectOk(await world.run(['delete', name, kept[0]!, '--recursive']), 'delete --recursive');
    expect(result.stdout.trim().split('\n')).toEqual([...kept].reverse());
    const files = await backend.files();
    expect(files.filter((file) => file.name.endsWith('.narinfo') || file.name.startsWith('nar/') || file.name.startsWith('pins/'))).toEqual(
      [],
    );
  });
});

function httpReaderOrFile(url: string) {
  if (url.startsWith('file://')) {
    const root = url.slice('file://'.length);
    return async (relative: string) => {
      const { readFile } = await import('node:fs/promises');
      return readFile(join(root, relative)).catch(() => undefined);
    };
  }
  return httpReader(url);
}
