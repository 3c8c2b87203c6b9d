import { cp, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder, objectsUnder, type StoredFile } from '../helpers/cache-files.js';
import { type RunningNginx } from '../helpers/nginx.js';
import { type RunningS3rver } from '../helpers/s3rver.js';
import { substituteThenDiscard } from '../helpers/substitute.js';
import { buildChain, checkCacheConsistent, directoryCache, httpReader, type CacheFileReader } from './consistency.js';
import { hashOf } from '../helpers/nix.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';

/*
 * A push racing a gc: the cache holds an old closure (its files aged two hours), unpinned; a
 * push of a new closure that depends on it starts, sees the old paths present and skips them; a
 * `gc --older-than 1h` starts a moment later and, unless it sees the new narinfos in time,
 * deletes the old paths. Whatever the interleaving, once both have finished,
 * everything the push reported pushed must be complete: its narinfos, their NARs, and every
 * reference, so that real Nix substitutes the new closure.
 */

/** When gc starts after the push: before, during and after the push's uploads. */
const GC_DELAYS_MS = [300, 900, 1800];

interface Backend {
  /**
   * The round starts from a copy, on disk, of the old closure pushed once to a server of the
   * same kind (registered under the same key), not from a push of its own: a file cache's folder
   * for the file cache and nginx, s3rver's own prefix folder for s3rver.
   */
  copyOf: () => PushedOld;
  /** `create` (setup: it starts no Nix) may run in the test process; not for S3 (the SDK's credentials). */
  /** Where the server keeps the round's files on disk, to age them as if pushed long ago. */
  storage(round: string): string;
  url(round: string): string;
  readUrl(round: string): string;
  files(round: string): Promise<StoredFile[]>;
  read(round: string): CacheFileReader;
}

let world: CachixEnv;
let scratch: string;
let nginx: RunningNginx;
let s3: RunningS3rver;
let old: string[];
let fresh: string[];
/** The old closure pushed once: where the server keeps its files, and the cache's keys. */
interface PushedOld {
  dir: string;
  signingKey: string;
  publicKey: string;
}
let inFileCache: PushedOld;
let inS3rver: PushedOld;

let servers: ServerWorld;

beforeAll(async () => {
  old = await buildChain('race-old', 4, 0);
  [fresh, servers] = await Promise.all([buildChain('race-new', 4, 2, [old.at(-1)!]), startServerWorld('gc-race', { listing: 'propfind' })]);
  ({ world, scratch, nginx, s3 } = servers);
  const folder = `${scratch}/race-old-pushed`;
  expectOk(await world.run(['create', 'old-in-file', '--url', `file://${folder}`]), 'create (old closure)');
  expectOk(await world.run(['create', 'old-in-s3', '--url', s3Url('race-old-pushed')]), 'create (old closure, S3)');
  await Promise.all(
    ['old-in-file', 'old-in-s3'].map(async (name) => expectOk(await world.run(['push', name, old.at(-1)!]), `push to ${name}`)),
  );
  const config = await loadConfig(world.configPath);
  const pushedTo = (name: string, dir: string): PushedOld => {
    const entry = config.caches[name];
    if (!entry?.signingKey || !entry.publicKey) throw new Error(`create ${name} left no keys in ${world.configPath}`);
    return { dir, signingKey: entry.signingKey, publicKey: entry.publicKey };
  };
  inFileCache = pushedTo('old-in-file', folder);
  inS3rver = pushedTo('old-in-s3', s3Storage('race-old-pushed'));
});

const s3Url = (round: string): string => s3.s3Url.replace(`s3://${s3.bucket}?`, `s3://${s3.bucket}/${round}?`);
// s3rver keeps each object as files under its directory, and reports LastModified from their mtime.
const s3Storage = (round: string): string => join(s3.directory, s3.bucket, round);
afterAll(() => servers?.stop());

const backends: Array<[string, () => Backend]> = [
  [
    'file',
    () => ({
      copyOf: () => inFileCache,
      storage: (round) => `${scratch}/${round}`,
      url: (round) => `file://${scratch}/${round}`,
      readUrl: (round) => `file://${scratch}/${round}`,
      files: (round) => filesUnder(`${scratch}/${round}`),
      read: (round) => directoryCache(`${scratch}/${round}`).read,
    }),
  ],
  [
    'nginx',
    () => ({
      copyOf: () => inFileCache,
      storage: (round) => join(nginx.root, round),
      url: (round) => `${nginx.url}/${round}`,
      readUrl: (round) => `${nginx.url}/${round}`,
      files: (round) => filesUnder(join(nginx.root, round)),
      read: (round) => httpReader(`${nginx.url}/${round}`),
    }),
  ],
  [
    's3rver',
    () => ({
      copyOf: () => inS3rver,
      storage: s3Storage,
      url: s3Url,
      readUrl: (round) => `${s3.httpUrl}/${round}`,
      files: (round) => objectsUnder(s3, `${round}/`),
      read: (round) => httpReader(`${s3.httpUrl}/${round}`),
    }),
  ],
];

async function ageFiles(directory: string, ageMs: number): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) await utimes(join(entry.parentPath, entry.name), when, when);
  }
}

describe.each(backends)('a push racing a gc on %s', (label, makeBackend) => {
  it.each(GC_DELAYS_MS)(
    'gc starting %i ms after the push: what the push reported pushed is complete',
    async (delay) => {
      const backend = makeBackend();
      const round = `race-${delay}`;
      const name = `${label}-${delay}`;
      const pushedOld = backend.copyOf();
      await cp(pushedOld.dir, backend.storage(round), { recursive: true });
      const register = ['create', name, '--url', backend.url(round)];
      const options = { env: { CACHIX_SIGNING_KEY: pushedOld.signingKey } };
      expectOk(await world.run(register, options), 'register the copy');
      const publicKey = pushedOld.publicKey;
      await ageFiles(backend.storage(round), 2 * 3600_000);
      const push = world.run(['push', name, fresh.at(-1)!]);
      await new Promise((resolve) => setTimeout(resolve, delay));
      const gc = await world.run(['gc', name, '--older-than', '1h']);
      const pushed = await push;
      expect(gc.code, gc.stderr).toBe(0);
      expect(pushed.code, pushed.stderr).toBe(0);
      const files = await backend.files(round);
      const narInfos = files.filter((file) => /^[0-9a-z]{32}\.narinfo$/.test(file.name)).map((file) => file.name);
      const report = await checkCacheConsistent(async () => narInfos, backend.read(round), {
        listNars: async () => files.filter((file) => file.name.startsWith('nar/')).map((file) => file.name),
      });
      expect(report.problems, `${gc.stderr}\n${pushed.stderr}`).toEqual([]);
      const present = new Set(narInfos.map((file) => file.slice(0, 32)));
      for (const path of [...fresh, ...old])
        expect(present.has(hashOf(path)), `${path} is missing\n${gc.stderr}\n${pushed.stderr}`).toBe(true);
      const substituted = await substituteThenDiscard(fresh.at(-1)!, backend.readUrl(round), publicKey);
      expect(substituted.stderr).toBe('');
      console.log(`${label}, gc after ${delay} ms: ${gc.stderr.trim().split('\n').at(-1)} | ${pushed.stderr.trim().split('\n').at(-1)}`);
    },
    300_000,
  );
});
