import { spawn } from 'node:child_process';
import { readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { startCachix, type CliResult } from '../helpers/cli.js';
import { filesUnder, type StoredFile } from '../helpers/cache-files.js';
import { makeHolds } from '../helpers/hold.js';
import { hashOf } from '../helpers/nix.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';
import { substituteIntoFreshStore, substituteThenDiscard } from '../helpers/substitute.js';
import { buildChain, checkCacheConsistent, directoryCache } from '../reliability/consistency.js';

/*
 * What gc, delete and pin must never do, each forced deterministically: a process held at a named
 * point (src/util/test-hold.ts) while another acts, or a cache put by hand in the state a race
 * leaves. A pin whose closure has a gap; two gcs at once; a push overlapping a gc; Ctrl-C during
 * gc; two pins written at once; counts that pass their totals.
 */

let servers: ServerWorld;
let world: CachixEnv;
let scratch: string;
let chain: string[];
let other: string[];

beforeAll(async () => {
  [servers, chain] = await Promise.all([startServerWorld('gc-safety', { listing: 'propfind' }), buildChain('safety', 3, 0)]);
  other = await buildChain('safety-other', 2, 0, [chain.at(-1)!]);
  ({ world, scratch } = servers);
});
afterAll(() => servers?.stop());

/** A file cache named `name` holding `paths` (with closures); returns its folder and public key. */
async function fileCache(name: string, paths: string[]): Promise<{ dir: string; publicKey: string }> {
  const dir = join(scratch, name);
  const publicKey = expectOk(await world.create(name, `file://${dir}`), 'create').stdout.trim();
  if (paths.length > 0) expectOk(await world.run(['push', name, ...paths]), 'push');
  return { dir, publicKey };
}

const narInfoNames = (files: StoredFile[]): string[] =>
  files.filter((file) => /^[0-9a-z]{32}\.narinfo$/.test(file.name)).map((file) => file.name);

describe('a pin whose closure has a gap', () => {
  it('gc refuses, naming the pin and the missing path, and deletes nothing; restored, Nix substitutes the pin', async () => {
    const { dir, publicKey } = await fileCache('gap', [chain.at(-1)!]);
    expectOk(await world.run(['pin', 'gap', 'release', chain.at(-1)!]), 'pin');
    const middle = join(dir, `${hashOf(chain[1]!)}.narinfo`);
    await rename(middle, `${middle}.aside`);
    const before = await filesUnder(dir);

    const refused = await world.run(['gc', 'gap', '--older-than', '0']);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`pin 'release' needs ${chain[1]} (referred to by ${chain[2]}), which has no readable narinfo`);
    expect(refused.stderr).toContain('gc cannot know what lies below it and deleted nothing');
    expect(refused.stdout).toBe('');
    expect(await filesUnder(dir)).toEqual(before);

    // With the risk accepted, a dry run names what would go: the path below the gap.
    const accepted = expectOk(await world.run(['gc', 'gap', '--older-than', '0', '--accept-pin-gaps', '--dry-run']), 'dry run');
    expect(accepted.stdout.trim().split('\n')).toEqual([chain[0]]);
    expect(accepted.stderr).toContain(`warning: pin 'release' needs ${chain[1]}`);
    expect(await filesUnder(dir)).toEqual(before);

    await rename(`${middle}.aside`, middle);
    const fresh = await substituteIntoFreshStore(chain.at(-1)!, `file://${dir}`, publicKey);
    try {
      expect(fresh.stderr).toBe('');
      expect(fresh.ok).toBe(true);
    } finally {
      await rm(fresh.root, { recursive: true, force: true });
    }
  });
});

/** moto's S3 (checked against AWS: it honours If-Match on DeleteObject) on a free loopback port. */
async function startMoto(): Promise<{ url: string; env: NodeJS.ProcessEnv; narInfos: () => Promise<string[]>; stop: () => void }> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const failed = new Promise<never>((_resolve, reject) =>
    child.on('error', () => reject(new Error('moto_server is not installed: pip install "moto[server]"'))),
  );
  const env = { AWS_ACCESS_KEY_ID: 'moto', AWS_SECRET_ACCESS_KEY: 'moto', AWS_REGION: 'us-east-1' };
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'moto', secretAccessKey: 'moto' },
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await Promise.race([client.send(new CreateBucketCommand({ Bucket: 'twice' })), failed]);
      break;
    } catch (error) {
      if (Date.now() > deadline || String(error).includes('not installed')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url: `s3://twice?endpoint=127.0.0.1:${port}&scheme=http&region=us-east-1`,
    env,
    narInfos: async () =>
      ((await client.send(new ListObjectsV2Command({ Bucket: 'twice' }))).Contents ?? [])
        .map((object) => object.Key!)
        .filter((key) => key.endsWith('.narinfo')),
    stop: () => {
      client.destroy();
      child.kill('SIGKILL');
    },
  };
}

describe('two gcs at once', () => {
  let moto: Awaited<ReturnType<typeof startMoto>>;
  beforeAll(async () => void (moto = await startMoto()));
  afterAll(() => moto?.stop());

  const backends: Array<[string, () => { url: string; env?: NodeJS.ProcessEnv; files: () => Promise<StoredFile[]> }]> = [
    ['file', () => ({ url: `file://${scratch}/twice`, files: () => filesUnder(`${scratch}/twice`) })],
    ['nginx', () => ({ url: `${servers.nginx.url}/twice`, files: () => filesUnder(join(servers.nginx.root, 'twice')) })],
    [
      'moto (S3)',
      () => ({
        url: moto.url,
        env: moto.env,
        files: async () => (await moto.narInfos()).map((name) => ({ name, size: 0 })),
      }),
    ],
  ];

  it.each(backends)('on %s: each deletion is reported by exactly one of them', async (label, makeBackend) => {
    const backend = makeBackend();
    const name = `twice-${label.split(' ')[0]}`;
    expectOk(await world.create(name, backend.url, { env: backend.env }), 'create');
    expectOk(await world.run(['push', name, chain.at(-1)!], { env: backend.env }), 'push');
    const local = await makeHolds();
    try {
      const env = { ...backend.env, ...local.env('deleting') };
      const runs = [world.run(['gc', name, '--older-than', '0'], { env }), world.run(['gc', name, '--older-than', '0'], { env })];
      // Both have read the whole cache before either deletes anything.
      await local.waitHeld('deleting', 2);
      await local.release('deleting');
      const [first, second] = await Promise.all(runs);
      expect(first!.code, first!.stderr).toBe(0);
      expect(second!.code, second!.stderr).toBe(0);
      const reported = [...first!.stdout.trim().split('\n'), ...second!.stdout.trim().split('\n')].filter(Boolean);
      expect(reported.sort()).toEqual([...chain].sort());
      const counted = (result: CliResult): [number, number] => {
        const match = /deleted (\d+) of 3 paths and (\d+) NAR file\(s\)/.exec(result.stderr);
        expect(match, result.stderr).not.toBeNull();
        return [Number(match![1]), Number(match![2])];
      };
      const [paths1, nars1] = counted(first!);
      const [paths2, nars2] = counted(second!);
      expect(paths1 + paths2).toBe(3);
      expect(nars1 + nars2).toBe(3);
      expect(narInfoNames(await backend.files())).toEqual([]);
    } finally {
      await local.cleanup();
    }
  });
});

describe('a push overlapping a gc', () => {
  it('looked up before the gc deleted, wrote after it listed again: the marker makes it push what went', async () => {
    const { dir, publicKey } = await fileCache('overlap', [chain.at(-1)!]);
    // `other` is built on the chain: its push needs the chain there.
    const local = await makeHolds();
    try {
      const push = world.run(['push', 'overlap', other.at(-1)!], { env: local.env('push-uploading') });
      await local.waitHeld('push-uploading');
      // The push has seen the chain present and skips it; the gc now deletes it all and finishes.
      const gc = expectOk(await world.run(['gc', 'overlap', '--older-than', '0']), 'gc');
      expect(gc.stdout.trim().split('\n').sort()).toEqual([...chain].sort());
      await local.release('push-uploading');
      const pushed = await push;
      expect(pushed.code, pushed.stderr).toBe(0);
      const files = await filesUnder(dir);
      const present = new Set(narInfoNames(files).map((file) => file.slice(0, 32)));
      for (const path of [...chain, ...other]) expect(present.has(hashOf(path)), `${path} is missing\n${pushed.stderr}`).toBe(true);
      const report = await checkCacheConsistent(async () => narInfoNames(files), directoryCache(dir).read, {
        listNars: async () => files.filter((file) => file.name.startsWith('nar/')).map((file) => file.name),
      });
      expect(report.problems).toEqual([]);
      expect((await substituteThenDiscard(chain.at(-1)!, `file://${dir}`, publicKey)).stderr).toBe('');
    } finally {
      await local.cleanup();
    }
  });

  it('ending while the gc still runs: the marker written when the gc began makes it push what went', async () => {
    const { dir, publicKey } = await fileCache('overlap-running', [chain.at(-1)!]);
    const local = await makeHolds();
    try {
      const push = world.run(['push', 'overlap-running', other.at(-1)!], { env: local.env('push-uploading') });
      await local.waitHeld('push-uploading');
      // The gc deletes the chain's narinfos and lists again (nothing new yet), then waits.
      const gc = world.run(['gc', 'overlap-running', '--older-than', '0'], { env: local.env('deleting-nars') });
      await local.waitHeld('deleting-nars');
      await local.release('push-uploading');
      const pushed = await push;
      expect(pushed.code, pushed.stderr).toBe(0);
      await local.release('deleting-nars');
      expect((await gc).code).toBe(0);
      const files = await filesUnder(dir);
      const report = await checkCacheConsistent(async () => narInfoNames(files), directoryCache(dir).read, {
        listNars: async () => files.filter((file) => file.name.startsWith('nar/')).map((file) => file.name),
      });
      expect(report.problems, pushed.stderr).toEqual([]);
      expect((await substituteThenDiscard(other.at(-1)!, `file://${dir}`, publicKey)).stderr).toBe('');
    } finally {
      await local.cleanup();
    }
  });

  it('pushing again what a gc removed meanwhile: no counter passes its total', async () => {
    // The state a gc leaves when it deleted a NAR as a push wrote it again: the narinfo is there,
    // its NAR is gone, and the gc has not marked its end.
    const { dir } = await fileCache('recount', [chain[0]!]);
    const narInfo = await readFile(join(dir, `${hashOf(chain[0]!)}.narinfo`), 'utf8');
    await unlink(join(dir, /^URL: (.*)$/m.exec(narInfo)![1]!));
    await writeFile(join(dir, 'gc-running.json'), JSON.stringify({ startedAt: new Date().toISOString() }));
    const pushed = expectOk(await world.run(['push', 'recount', chain[1]!]), 'push');
    const counters = [...pushed.stderr.matchAll(/\[(\d+)\/(\d+)\] pushed/g)].map((match) => [Number(match[1]), Number(match[2])]);
    expect(counters.length, pushed.stderr).toBe(2);
    for (const [done, total] of counters) expect(done, pushed.stderr).toBeLessThanOrEqual(total!);
    expect(pushed.stderr).toContain('a gc ran meanwhile and removed 1 path(s) this push needs: pushing them again');
    const again = await readFile(join(dir, `${hashOf(chain[0]!)}.narinfo`), 'utf8');
    await readFile(join(dir, /^URL: (.*)$/m.exec(again)![1]!));
  });
});

describe('interrupting and small things', () => {
  it('Ctrl-C during gc: says it was interrupted and how far it got, exit 130', async () => {
    await fileCache('sigint', [chain.at(-1)!]);
    const local = await makeHolds();
    try {
      const gc = startCachix(['gc', 'sigint', '--older-than', '0'], { ...world.env, ...local.env('deleting') });
      await local.waitHeld('deleting');
      gc.child.kill('SIGINT');
      const result = await gc.done;
      expect(result.code).toBe(130);
      expect(result.stderr).toContain('interrupted: deleted 0 of 3 paths; what remains is consistent; run gc again to finish');
    } finally {
      await local.cleanup();
    }
  });

  it('delete --dry-run lists what would go, referrers first, and changes nothing', async () => {
    const { dir } = await fileCache('dry', [chain.at(-1)!]);
    const before = await filesUnder(dir);
    const result = expectOk(await world.run(['delete', 'dry', chain[0]!, '--recursive', '--dry-run']), 'delete --dry-run');
    expect(result.stdout.trim().split('\n')).toEqual([...chain].reverse());
    expect(result.stderr).toContain('dry run: would delete 3 path(s); nothing was changed');
    expect(await filesUnder(dir)).toEqual(before);
  });

  it("hints name the user's cache, not a literal CACHE", async () => {
    await fileCache('hinted', []);
    const result = await world.run(['pin', 'hinted', 'rel', '--delete']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cachix pin hinted --list');
    expect(result.stderr).not.toContain('CACHE');
  });

  it('two pins written at once on one name: both revisions are kept', async () => {
    const { dir } = await fileCache('pins', [chain.at(-1)!, other.at(-1)!]);
    const local = await makeHolds();
    try {
      const env = local.env('pin-writing');
      const pins = [world.run(['pin', 'pins', 'rel', chain.at(-1)!], { env }), world.run(['pin', 'pins', 'rel', other.at(-1)!], { env })];
      // Both have read the (absent) pin; both now write their own version of it.
      await local.waitHeld('pin-writing', 2);
      await local.release('pin-writing');
      for (const result of await Promise.all(pins)) expect(result.code, result.stderr).toBe(0);
      const pin = JSON.parse(await readFile(join(dir, 'pins', 'rel.json'), 'utf8')) as { revisions: Array<{ storePath: string }> };
      expect(pin.revisions.map((revision) => revision.storePath).sort()).toEqual([chain.at(-1)!, other.at(-1)!].sort());
    } finally {
      await local.cleanup();
    }
  });
});
