import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachixEnv, expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { buildTestClosure, nixClosure } from '../helpers/nix.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';
import { substituteIntoFreshStore } from '../helpers/substitute.js';

/** create, push, push again, substitute with real Nix: the same story for each kind of server. */
describe.each([
  ['nginx (WebDAV PUT)', 'http'],
  ['s3rver (S3 API)', 's3'],
] as const)('push to %s through the CLI', (_label, kind) => {
  let world: CachixEnv;
  let nginx: RunningNginx | undefined;
  let s3: RunningS3rver | undefined;
  let createUrl: string;
  let readUrl: string;
  let closure: { top: string; lib: string; data: string };
  let publicKey: string;

  beforeAll(async () => {
    world = await makeCachixEnv();
    closure = await buildTestClosure(`servers-${kind}`);
    if (kind === 'http') {
      nginx = await startNginx();
      createUrl = nginx.url;
      readUrl = nginx.url;
    } else {
      s3 = await startS3rver();
      createUrl = s3.s3Url;
      readUrl = s3.httpUrl;
      Object.assign(world.env, s3.env);
    }
    publicKey = expectOk(await world.create('remote', createUrl), 'create').stdout.trim();
  });
  afterAll(async () => {
    await nginx?.stop();
    await s3?.stop();
    await world.cleanup();
  });

  it('create wrote nix-cache-info on the server', async () => {
    const response = await fetch(`${readUrl}/nix-cache-info`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('StoreDir: /nix/store');
  });

  it('pushes the closure, then uploads nothing the second time', async () => {
    const first = expectOk(await world.run(['push', 'remote', closure.top]), 'push');
    expect(first.stderr).toMatch(/pushed 3 paths .* skipped 0/);
    expect(first.stderr.match(/^\[\d+\/3\] pushed /gm)).toHaveLength(3);
    const second = expectOk(await world.run(['push', 'remote', closure.top]), 'second push');
    expect(second.stderr).toMatch(/pushed 0 paths .* skipped 3/);
  });

  it('real Nix substitutes the closure from the server with signatures required', async () => {
    const fresh = await substituteIntoFreshStore(closure.top, readUrl, publicKey);
    expect(fresh.stderr).toBe('');
    expect(fresh.ok).toBe(true);
    for (const path of await nixClosure(closure.top)) {
      const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      expect((await fetch(`${readUrl}/${hash}.narinfo`)).status).toBe(200);
    }
    const random = await readFile(join(fresh.root, closure.data, 'share', 'random.bin'));
    expect(random.equals(await readFile(join(closure.data, 'share', 'random.bin')))).toBe(true);
    await rm(fresh.root, { recursive: true, force: true });
  });

  it('a URL and CACHIX_SIGNING_KEY are enough, for CI without a config', async () => {
    const config = await readFile(world.configPath, 'utf8');
    const secret = /signing_key = "([^"]+)"/.exec(config)![1]!;
    const bare = await makeCachixEnv();
    try {
      const result = expectOk(
        await bare.run(['push', createUrl, closure.top], { env: { ...(s3?.env ?? {}), CACHIX_SIGNING_KEY: secret } }),
        'push by URL',
      );
      expect(result.stderr).toMatch(/pushed 0 paths .* skipped 3/);
      expect(result.stderr + result.stdout).not.toContain(secret.split(':')[1]);
    } finally {
      await bare.cleanup();
    }
  });
});
