import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder, objectsUnder, type StoredFile } from '../helpers/cache-files.js';
import { type RunningNginx } from '../helpers/nginx.js';
import { discardIncompletePuts, type RunningS3rver } from '../helpers/s3rver.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { directorySink, s3Sink, writeSyntheticCache, type SyntheticCache } from '../helpers/synthetic-cache.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { makeHolds } from '../helpers/hold.js';
import { checkCacheConsistent, directoryCache, httpReader, type CacheFileReader } from './consistency.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';

/*
 * SIGKILL `cachix gc --older-than 0` at seeded moments while it deletes most of a cache's paths,
 * then judge what a reader sees: every narinfo's NAR complete, every reference present, the
 * pinned closure whole. Then a second gc must finish: exactly the pinned closure stays.
 *
 * The kill is timed by what is left on disk, not by the clock: once at a seeded point among the
 * narinfo deletions, once when the NAR files begin to go. Every kill lands mid-deletion, so small
 * caches suffice; scale belongs to `npm run bench:maintain`.
 */

const PATHS = { file: 200, nginx: 80, s3: 40 };
const SEED = 20261126;

interface Backend {
  url(round: number): string;
  seed(round: number): Promise<SyntheticCache>;
  files(round: number): Promise<StoredFile[]>;
  read(round: number): CacheFileReader;
  /** The folder on disk where the server keeps the round's files (watched to time the kill). */
  disk(round: number): string;
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
      disk: (round) => `${scratch}/file-${round}`,
    }),
  ],
  [
    'nginx (PROPFIND)',
    () => ({
      url: (round) => `${nginx.url}/round-${round}`,
      seed: (round) => writeSyntheticCache(directorySink(join(nginx.root, `round-${round}`)), PATHS.nginx, SEED + round),
      files: (round) => filesUnder(join(nginx.root, `round-${round}`)),
      read: (round) => httpReader(`${nginx.url}/round-${round}`),
      disk: (round) => join(nginx.root, `round-${round}`),
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
      disk: (round) => join(s3.directory, s3.bucket, `round-${round}`),
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

/** Narinfos and NAR files in a round's folder on disk (s3rver adds its own suffixes to the names). */
async function countOnDisk(folder: string): Promise<{ narInfos: number; nars: number }> {
  const names = await readdir(folder).catch(() => [] as string[]);
  const nars = await readdir(join(folder, 'nar')).catch(() => [] as string[]);
  return {
    narInfos: names.filter((name) => /^[0-9a-z]{32}\.narinfo/.test(name)).length,
    nars: nars.filter((name) => !name.startsWith('.')).length,
  };
}

/**
 * Runs gc and SIGKILLs it once `due` says so of what is left on disk (polled every 10 ms), so the
 * kill lands at a chosen point of its deletions whatever the machine's speed.
 */
async function gcKilledWhen(
  url: string,
  folder: string,
  due: (left: { narInfos: number; nars: number }) => boolean | Promise<boolean>,
  env: NodeJS.ProcessEnv = {},
) {
  const child = spawn(process.execPath, [CACHIX_BIN, 'gc', url, '--older-than', '0', '--grace', '0'], {
    env: { ...process.env, CI: 'true', ...world.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  let ended = false;
  void closed.then(() => (ended = true));
  while (!ended) {
    if (await due(await countOnDisk(folder))) {
      child.kill('SIGKILL');
      break;
    }
    await sleep(10);
  }
  const { code, signal } = await closed;
  if (signal === null && code !== 0) throw new Error(`gc exited ${code}: ${stderr}`);
  return signal;
}

describe.each(backends)('SIGKILL during gc on %s', (_label, makeBackend) => {
  it('killed among the narinfo deletions, then before the NARs go: consistent each time, and the next gc finishes', async () => {
    const backend = makeBackend();
    const outcomes: string[] = [];
    for (const round of [1, 2]) {
      const cache = await backend.seed(round);
      const start = await countOnDisk(backend.disk(round));
      const pinned = cache.pinnedClosure.size;
      // Round 1: at a seeded point among the narinfo deletions; round 2: every narinfo gone, no
      // NAR yet (held there: src/util/test-hold.ts), which leaves NARs no narinfo names.
      const killAt = pinned + Math.round((0.1 + 0.8 * random()) * (start.narInfos - pinned));
      const holds = await makeHolds();
      const signal = await gcKilledWhen(
        backend.url(round),
        backend.disk(round),
        round === 1
          ? (left) => left.narInfos <= killAt
          : () =>
              holds
                .waitHeld('deleting-nars', 1, 0)
                .then(() => true)
                .catch(() => false),
        round === 1 ? {} : holds.env('deleting-nars'),
      ).finally(() => holds.cleanup());
      await backend.afterKill?.();
      const before = await judge(backend, round, cache, `round ${round}`);
      outcomes.push(
        `round ${round}: ${signal ?? 'finished'}, ${before.filter((file) => file.name.endsWith('.narinfo')).length} narinfos left`,
      );
      expect(signal, `round ${round}: the kill did not land`).toBe('SIGKILL');
      expectOk(await world.run(['gc', backend.url(round), '--older-than', '0', '--grace', '0']), `gc after the kill in round ${round}`);
      const after = await judge(backend, round, cache, `round ${round}, after the next gc`);
      const narInfos = after.filter((file) => file.name.endsWith('.narinfo')).map((file) => file.name.slice(0, 32));
      expect(new Set(narInfos)).toEqual(cache.pinnedClosure);
      expect(after.filter((file) => file.name.startsWith('nar/'))).toHaveLength(cache.pinnedClosure.size);
    }
    console.log(outcomes.join('; '));
  }, 300_000);
});
