import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder, objectsUnder, type StoredFile } from '../helpers/cache-files.js';
import { type RunningNginx } from '../helpers/nginx.js';
import { discardIncompletePuts, type RunningS3rver } from '../helpers/s3rver.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { directorySink, s3Sink, writeSyntheticCache, type SyntheticCache } from '../helpers/synthetic-cache.js';
import { checkCacheConsistent, directoryCache, httpReader, runAndKill, type CacheFileReader } from './consistency.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';

/*
 * SIGKILL `cachix gc --older-than 0` at seeded moments while it deletes most of a cache's paths,
 * then judge what a reader sees: every narinfo's NAR complete, every reference present, the
 * pinned closure whole. Then a second gc must finish: exactly the pinned closure stays.
 */

const KILLS_PER_BACKEND = 5;
/** Sized so that one gc takes seconds on each server (s3rver is the slowest by far). */
const PATHS = { file: 2000, nginx: 400, s3: 150 };
const SEED = 20261126;

interface Backend {
  url(round: number): string;
  seed(round: number): Promise<SyntheticCache>;
  files(round: number): Promise<StoredFile[]>;
  read(round: number): CacheFileReader;
  afterKill?(): Promise<void>;
}

let world: CachixEnv;
let scratch: string;
let nginx: RunningNginx;
let s3: RunningS3rver;
const random = seededRandom(SEED);

let servers: ServerWorld;

beforeAll(async () => {
  servers = await startServerWorld('gc-crash', { listing: 'propfind' });
  ({ world, scratch, nginx, s3 } = servers);
});
afterAll(() => servers?.stop());

const backends: Array<[string, () => Backend]> = [
  [
    'file',
    () => ({
      url: (round) => `file://${scratch}/file-${round}`,
      seed: (round) => writeSyntheticCache(directorySink(`${scratch}/file-${round}`), PATHS.file, SEED + round),
      files: (round) => filesUnder(`${scratch}/file-${round}`),
      read: (round) => directoryCache(`${scratch}/file-${round}`).read,
    }),
  ],
  [
    'nginx (PROPFIND)',
    () => ({
      url: (round) => `${nginx.url}/round-${round}`,
      seed: (round) => writeSyntheticCache(directorySink(join(nginx.root, `round-${round}`)), PATHS.nginx, SEED + round),
      files: (round) => filesUnder(join(nginx.root, `round-${round}`)),
      read: (round) => httpReader(`${nginx.url}/round-${round}`),
    }),
  ],
  [
    's3rver',
    () => ({
      url: (round) => s3.s3Url.replace(`s3://${s3.bucket}?`, `s3://${s3.bucket}/round-${round}?`),
      seed: async (round) => {
        const { sink, close } = s3Sink(s3, `round-${round}/`);
        try {
          return await writeSyntheticCache(sink, PATHS.s3, SEED + round);
        } finally {
          close();
        }
      },
      files: (round) => objectsUnder(s3, `round-${round}/`),
      read: (round) => httpReader(`${s3.httpUrl}/round-${round}`),
      afterKill: async () => void (await discardIncompletePuts(s3.directory)),
    }),
  ],
];

async function judge(backend: Backend, round: number, cache: SyntheticCache, when: string): Promise<StoredFile[]> {
  const files = await backend.files(round);
  const report = await checkCacheConsistent(
    async () => files.filter((file) => /^[0-9a-z]{32}\.narinfo$/.test(file.name)).map((file) => file.name),
    backend.read(round),
    { listNars: async () => files.filter((file) => file.name.startsWith('nar/')).map((file) => file.name) },
  );
  expect(report.problems, `${when}: ${report.problems.join('\n')}`).toEqual([]);
  const present = new Set(files.filter((file) => file.name.endsWith('.narinfo')).map((file) => file.name.slice(0, 32)));
  for (const hash of cache.pinnedClosure) expect(present.has(hash), `${when}: pinned ${hash} is gone`).toBe(true);
  return files;
}

describe.each(backends)('SIGKILL during gc on %s', (_label, makeBackend) => {
  it(`${KILLS_PER_BACKEND} seeded kills: consistent every time, and the next gc finishes`, async () => {
    const backend = makeBackend();
    // How long one whole gc takes here and now: the kill points spread over it.
    const calibration = await backend.seed(0);
    const started = Date.now();
    expectOk(await world.run(['gc', backend.url(0), '--older-than', '0', '--grace', '0']), 'calibration gc');
    const fullMs = Date.now() - started;
    await judge(backend, 0, calibration, 'after a whole gc');
    const outcomes: string[] = [];
    for (let round = 1; round <= KILLS_PER_BACKEND; round++) {
      const cache = await backend.seed(round);
      // Under load later runs can be quicker than the calibration: aim within its first 80 %.
      const killAfterMs = Math.round(150 + random() * 0.8 * fullMs);
      const killed = await runAndKill(['gc', backend.url(round), '--older-than', '0', '--grace', '0'], world.env, killAfterMs);
      await backend.afterKill?.();
      const before = await judge(backend, round, cache, `round ${round}, killed after ${killAfterMs} ms`);
      outcomes.push(
        `${killAfterMs} ms: ${killed.signal ?? `exit ${killed.code}`}, ${before.filter((file) => file.name.endsWith('.narinfo')).length} narinfos left`,
      );
      expectOk(await world.run(['gc', backend.url(round), '--older-than', '0', '--grace', '0']), `gc after the kill in round ${round}`);
      const after = await judge(backend, round, cache, `round ${round}, after the next gc`);
      const narInfos = after.filter((file) => file.name.endsWith('.narinfo')).map((file) => file.name.slice(0, 32));
      expect(new Set(narInfos)).toEqual(cache.pinnedClosure);
      expect(after.filter((file) => file.name.startsWith('nar/'))).toHaveLength(cache.pinnedClosure.size);
    }
    console.log(`gc takes ${fullMs} ms whole; kills: ${outcomes.join('; ')}`);
    // At least some kills must have landed mid-gc, or this test tested nothing.
    expect(outcomes.filter((line) => line.includes('SIGKILL')).length).toBeGreaterThan(0);
  }, 600_000);
});
