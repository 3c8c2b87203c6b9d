import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { type RunningNginx } from '../helpers/nginx.js';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { startCachix } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { buildWithNix, run } from '../helpers/nix.js';
import { discardIncompletePuts, type RunningS3rver, s3ClientFor } from '../helpers/s3rver.js';
import { substituteThenDiscard } from '../helpers/substitute.js';
import { buildChain, checkCacheConsistent, directoryCache, httpReader, runAndKillWhen, type CacheFileReader } from './consistency.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * SIGKILL `cachix push` while it uploads a chain of 10 paths (2 MB of random data each, zstd -l 12),
 * at points chosen by what the cache shows, then check what a reader of the cache would see: every
 * narinfo's NAR is complete and hashes to FileHash, every reference has a narinfo. Then a second
 * push must finish the job, and real Nix must substitute it all (from the last round of each
 * server; the consistency check reads every byte of every round).
 */

/**
 * Where each push is killed, told by the server's own listing (asked every 20 ms): as soon as
 * nar/ holds anything (the first NAR being written, or just stored with no narinfo naming it yet),
 * and once half the narinfos are written with the other uploads in flight.
 */
const KILL_POINTS: Array<{ label: string; reached: (nars: number, narinfos: number, total: number) => boolean }> = [
  { label: 'at the first NAR', reached: (nars) => nars > 0 },
  { label: 'with half the narinfos written', reached: (_nars, narinfos, total) => narinfos >= total / 2 },
];

interface Backend {
  /** The cache URL for round `round` (each round starts from an empty cache). */
  url(round: number): string;
  /** What Nix substitutes from (same as url for file and nginx; the bucket over HTTP for s3). */
  substituterUrl(round: number): string;
  listNarinfos(round: number): () => Promise<string[]>;
  read(round: number): CacheFileReader;
  listNars(round: number): () => Promise<string[]>;
  /** What the server does about a client that vanished mid-request, before the cache is judged. */
  afterKill?(): Promise<void>;
  env: NodeJS.ProcessEnv;
  /**
   * `create` (setup: it starts no Nix) may run in the test process; not for S3, whose SDK reads
   * its credentials from the process environment.
   */
}

let world: CachixEnv;
let chain: string[];
let top: string;
let scratch: string;
let nginx: RunningNginx;
let s3: RunningS3rver;

let servers: ServerWorld;

beforeAll(async () => {
  [chain, servers] = await Promise.all([buildChain('crash', 10, 2), startServerWorld('crash')]);
  ({ world, scratch, nginx, s3 } = servers);
  top = chain[chain.length - 1]!;
});
afterAll(() => servers?.stop());

function fileBackend(): Backend {
  const dir = (round: number): string => join(scratch, `file-${round}`);
  return {
    url: (round) => `file://${dir(round)}`,
    substituterUrl: (round) => `file://${dir(round)}`,
    listNarinfos: (round) => directoryCache(dir(round)).listNarinfos,
    listNars: (round) => directoryCache(dir(round)).listNars,
    read: (round) => directoryCache(dir(round)).read,
    env: {},
  };
}

function nginxBackend(): Backend {
  return {
    url: (round) => `${nginx.url}/round-${round}`,
    substituterUrl: (round) => `${nginx.url}/round-${round}`,
    // nginx keeps what it stores in its root; listing it is the server's view, reads go over HTTP as Nix's do.
    listNarinfos: (round) => directoryCache(join(nginx.root, `round-${round}`)).listNarinfos,
    listNars: (round) => directoryCache(join(nginx.root, `round-${round}`)).listNars,
    read: (round) => httpReader(`${nginx.url}/round-${round}`),
    env: {},
  };
}

function s3Backend(): Backend {
  const client = s3ClientFor(s3);
  const keys = async (prefix: string): Promise<string[]> => {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, MaxKeys: 1000 }));
    return (listed.Contents ?? []).map((object) => object.Key!.slice(prefix.length));
  };
  return {
    url: (round) => s3.s3Url.replace(`s3://${s3.bucket}?`, `s3://${s3.bucket}/round-${round}?`),
    substituterUrl: (round) => `${s3.httpUrl}/round-${round}`,
    listNarinfos: (round) => async () => (await keys(`round-${round}/`)).filter((key) => !key.includes('/') && key.endsWith('.narinfo')),
    listNars: (round) => async () => (await keys(`round-${round}/`)).filter((key) => key.startsWith('nar/')),
    read: (round) => httpReader(`${s3.httpUrl}/round-${round}`),
    // s3rver, unlike S3, keeps half of a PUT whose client died; make it behave as S3 does.
    afterKill: async () => {
      const discarded = await discardIncompletePuts(s3.directory);
      if (discarded.length > 0) console.log(`s3rver: discarded ${discarded.length} incomplete PUT(s): ${discarded.join(', ')}`);
    },
    env: s3.env,
  };
}

async function expectConsistent(backend: Backend, round: number, when: string): Promise<number> {
  const report = await checkCacheConsistent(backend.listNarinfos(round), backend.read(round), { listNars: backend.listNars(round) });
  expect(report.problems, `${when}: ${report.problems.join('\n')}`).toEqual([]);
  return report.narinfos;
}

async function killRounds(name: string, backend: Backend): Promise<void> {
  for (const [round, point] of KILL_POINTS.entries()) {
    const cacheName = `${name}-${round}`;
    const create = ['create', cacheName, '--url', backend.url(round)];
    const publicKey = expectOk(await world.run(create, { env: backend.env }), `create ${cacheName}`).stdout.trim();
    const [listNars, listNarinfos] = [backend.listNars(round), backend.listNarinfos(round)];
    let seen = '';
    const killed = await runAndKillWhen(['push', cacheName, '-l', '12', top], { ...world.env, ...backend.env }, async () => {
      const [nars, narinfos] = await Promise.all([listNars(), listNarinfos()]);
      seen = `${nars.length} NAR files, ${narinfos.length} narinfos`;
      return point.reached(nars.length, narinfos.length, chain.length);
    });
    // A test of crashes must have crashed something: the kill landed while the push ran.
    expect(killed.signal, `${point.label}: the push ended first (${killed.stderr.trim().split('\n').pop()})`).toBe('SIGKILL');
    await backend.afterKill?.();
    const atKill = await expectConsistent(backend, round, `after SIGKILL ${point.label} (${seen})`);
    expect(atKill).toBeLessThan(chain.length);
    const started = Date.now();

    const finished = expectOk(await world.run(['push', cacheName, top], { env: backend.env }), `push after the kill ${point.label}`);
    expect(finished.stderr).toMatch(new RegExp(`pushed ${chain.length - atKill} paths .* skipped ${atKill} `));
    expect(await expectConsistent(backend, round, 'after the second push')).toBe(chain.length);
    // The consistency check reads every byte a reader would (each NAR against its FileHash, each
    // reference's narinfo); real Nix, which also checks our signatures, substitutes the last round's
    // cache, so a signature broken only after a kill would still show there.
    if (round === KILL_POINTS.length - 1) {
      const fresh = await substituteThenDiscard(top, backend.substituterUrl(round), publicKey);
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    }
    console.log(`${name}: killed ${point.label} (${seen}), ${atKill}/${chain.length} narinfos; completed in ${Date.now() - started} ms`);
  }
}

describe('SIGKILL during push never leaves a narinfo without its full NAR', () => {
  it('file:// cache: killed at the first NAR and with half the narinfos written, each time completed by the next push', async () => {
    await killRounds('crash-file', fileBackend());
  });

  it('nginx (WebDAV PUT): killed at the first NAR and with half the narinfos written, each time completed by the next push', async () => {
    await killRounds('crash-nginx', nginxBackend());
  });

  it('s3rver: killed at the first NAR and with half the narinfos written, each time completed by the next push', async () => {
    await killRounds('crash-s3', s3Backend());
  });
});

describe('two pushes of overlapping closures to the same cache at once', () => {
  let other: string[];
  beforeAll(async () => {
    // A second chain that shares the first half of the first one's closure.
    other = await buildChain('overlap', 6, 1, [chain[4]!]);
  });

  async function pushBothAtOnce(
    cacheName: string,
    url: string,
    backend: { listNarinfos: () => Promise<string[]>; read: CacheFileReader; listNars: () => Promise<string[]> },
  ): Promise<string> {
    // A file or nginx cache: create (setup, no Nix) runs in the test process.
    const publicKey = expectOk(await world.run(['create', cacheName, '--url', url]), `create ${cacheName}`).stdout.trim();
    const [first, second] = await Promise.all([
      world.run(['push', cacheName, '-j', '4', top]),
      world.run(['push', cacheName, '-j', '4', other[other.length - 1]!]),
    ]);
    expectOk(first, 'first concurrent push');
    expectOk(second, 'second concurrent push');
    const report = await checkCacheConsistent(backend.listNarinfos, backend.read, { listNars: backend.listNars });
    expect(report.problems).toEqual([]);
    // 10 of the first chain + 6 of the second (the shared 5 counted once).
    expect(report.narinfos).toBe(16);
    return publicKey;
  }

  it('file:// cache: both exit 0, the cache is consistent and real Nix substitutes both', async () => {
    const dir = join(scratch, 'concurrent-file');
    const publicKey = await pushBothAtOnce('both-file', `file://${dir}`, directoryCache(dir));
    for (const path of [top, other[other.length - 1]!]) {
      const fresh = await substituteThenDiscard(path, `file://${dir}`, publicKey);
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    }
  });

  it('nginx: both exit 0, the cache is consistent and real Nix substitutes both', async () => {
    const url = `${nginx.url}/concurrent`;
    const local = directoryCache(join(nginx.root, 'concurrent'));
    const publicKey = await pushBothAtOnce('both-nginx', url, { ...local, read: httpReader(url) });
    for (const path of [top, other[other.length - 1]!]) {
      const fresh = await substituteThenDiscard(path, url, publicKey);
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    }
  });
});

describe('SIGKILL in the middle of a multipart S3 upload', () => {
  // 60 MB of random bytes, pushed uncompressed: four 16 MiB parts.
  const BYTES = 60_000_000;
  let bigPath: string;
  beforeAll(async () => {
    bigPath = await buildWithNix('multipart-crash', `head -c ${BYTES} /dev/urandom > $out`);
  }, 120_000);
  afterAll(async () => {
    await run('nix-store', ['--delete', bigPath]).catch(() => undefined);
  });

  it('leaves no narinfo and no NAR object, only the unfinished upload, and the next push completes it', async () => {
    // Parts after the first are held back by a proxy, so the kill lands after a part is stored
    // and before the upload is completed, every time.
    const proxy = await startFaultProxy(s3.endpoint, { preserveHost: true });
    try {
      proxy.addRule({ method: 'PUT', path: /partNumber=[2-9]/, times: 3, action: { kind: 'delay', ms: 3000 } });
      const port = new URL(proxy.url).port;
      const url = `s3://${s3.bucket}/multipart?endpoint=127.0.0.1:${port}&scheme=http&region=us-east-1`;
      const publicKey = expectOk(await world.run(['create', 'multipart', '--url', url], { env: s3.env }), 'create').stdout.trim();
      const push = startCachix(['push', 'multipart', '-m', 'none', bigPath], { ...world.env, ...s3.env });
      const firstPartStored = (): boolean =>
        proxy.requests.some((request) => /partNumber=1\b/.test(request.path) && request.status === 200);
      await waitUntil('part 1 stored, or the push ended', () => firstPartStored() || push.child.exitCode !== null, {
        timeoutMs: 60_000,
        intervalMs: 20,
        details: push.stderr,
      });
      push.kill('SIGKILL');
      expect((await push.done).signal).toBe('SIGKILL');
      expect(firstPartStored()).toBe(true);

      await discardIncompletePuts(s3.directory);
      const uploads = join(s3.directory, s3.bucket, '._S3rver_uploads');
      // The unfinished upload is there (on real S3 it stays until a lifecycle rule aborts it) ...
      expect(existsSync(uploads) ? (await readdir(uploads)).length : 0).toBe(1);
      // ... and a reader sees nothing of it: no narinfo, no NAR object.
      const client = s3ClientFor(s3);
      const keys = async (): Promise<string[]> =>
        ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'multipart/' }))).Contents ?? []).map((object) =>
          object.Key!.slice('multipart/'.length),
        );
      expect(await keys()).toEqual(['nix-cache-info']);

      const finished = expectOk(await world.run(['push', 'multipart', '-m', 'none', bigPath], { env: s3.env }), 'push after the kill');
      expect(finished.stderr).toMatch(/pushed 1 paths/);
      const report = await checkCacheConsistent(
        async () => (await keys()).filter((key) => key.endsWith('.narinfo')),
        httpReader(`${s3.httpUrl}/multipart`),
        { listNars: async () => (await keys()).filter((key) => key.startsWith('nar/')) },
      );
      expect(report.problems).toEqual([]);
      expect(report.narinfos).toBe(1);
      const fresh = await substituteThenDiscard(bigPath, `${s3.httpUrl}/multipart`, publicKey);
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    } finally {
      await proxy.stop();
    }
  }, 180_000);
});
