import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpCache } from '../../src/caches/http.js';
import { lookupPipelined } from '../../src/caches/http-lookup.js';
import { UserError } from '../../src/errors.js';
import { encodeBase32 } from '../../src/nix/base32.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';

/** nginx closes a connection after this many requests on it (its keepalive_requests). */
const REQUESTS_PER_CONNECTION = 100;
/** Spread over 4 connections, more than keepalive_requests each: each is closed under the pipeline. */
const LOOKUPS = 6 * REQUESTS_PER_CONNECTION;
const fastRetry = { baseMs: 20, capMs: 100, budgetMs: 5_000, log: () => {} };

function hashParts(count: number): string[] {
  return Array.from({ length: count }, () => encodeBase32(randomBytes(20)));
}

async function writeNarInfos(root: string, present: string[]): Promise<void> {
  for (const hashPart of present) await writeFile(join(root, `${hashPart}.narinfo`), `StorePath: /nix/store/${hashPart}-x\n`);
}

describe('narinfo lookups pipelined over kept-alive connections, against real nginx', () => {
  let nginx: RunningNginx;
  let all: string[];
  let present: string[];
  beforeAll(async () => {
    nginx = await startNginx({ keepaliveRequests: REQUESTS_PER_CONNECTION });
    all = hashParts(LOOKUPS);
    present = all.filter((_, index) => index % 3 === 0);
    await writeNarInfos(nginx.root, present);
  });
  afterAll(async () => nginx?.stop());

  it('answers every lookup exactly, across connections the server closes mid-pipeline', async () => {
    const result = await lookupPipelined(all, { base: new URL(`${nginx.url}/`), idleMs: 10_000 });
    expect([...result.present].sort()).toEqual([...present].sort());
    expect(result.absent.size).toBe(all.length - present.length);
    const cache = createHttpCache(new URL(nginx.url), { retry: fastRetry });
    try {
      const missing = await cache.missing(all);
      expect([...missing].sort()).toEqual(all.filter((hashPart) => !present.includes(hashPart)).sort());
    } finally {
      await cache.close?.();
    }
  });

  it('a narinfo someone else deleted is missing at the next lookup: nothing is remembered between them', async () => {
    const cache = createHttpCache(new URL(nginx.url), { retry: fastRetry });
    try {
      expect((await cache.missing(present)).size).toBe(0);
      const deleted = present.slice(0, 10);
      for (const hashPart of deleted) await rm(join(nginx.root, `${hashPart}.narinfo`));
      expect([...(await cache.missing(present))].sort()).toEqual([...deleted].sort());
      await writeNarInfos(nginx.root, deleted);
    } finally {
      await cache.close?.();
    }
  });
});

describe('pipelined lookups on a cache whose reads need credentials', () => {
  const token = 'lookup-secret-token';
  let nginx: RunningNginx;
  let all: string[];
  beforeAll(async () => {
    nginx = await startNginx({ bearerToken: token, protectReads: true });
    all = hashParts(64);
    await writeNarInfos(nginx.root, all.slice(0, 32));
  });
  afterAll(async () => nginx?.stop());

  it('sends the credentials with every pipelined request', async () => {
    const cache = createHttpCache(new URL(nginx.url), { token, retry: fastRetry });
    try {
      expect([...(await cache.missing(all))].sort()).toEqual(all.slice(32).sort());
    } finally {
      await cache.close?.();
    }
  });

  it('without them, a 401 is not taken for absent: the careful path says what is wrong', async () => {
    const cache = createHttpCache(new URL(nginx.url), { retry: fastRetry, netrcFile: '/nonexistent' });
    try {
      await expect(cache.missing(all)).rejects.toThrow(UserError);
      await expect(cache.missing(all)).rejects.toThrow(/401|credentials|authtoken/i);
    } finally {
      await cache.close?.();
    }
  });
});
