import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryCache } from '../../src/caches/cache.js';
import { createHttpCache } from '../../src/caches/http.js';
import { parentFolderOf, WebDavFolders } from '../../src/caches/http-folders.js';
import { UserError } from '../../src/errors.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startRclone, type RunningRclone } from '../helpers/rclone.js';

/*
 * A PUT into a folder that does not exist: nginx with create_full_put_path makes it and never
 * sees a MKCOL; nginx without it (409) and rclone (404) get their folders made with MKCOL, parents
 * first as the server asks; a server that can make none is named with what it answered, and the
 * advice fits the server that answered.
 */

const fastRetry = { baseMs: 20, capMs: 100, budgetMs: 5000, log: () => {} };
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function open(url: string): BinaryCache {
  const cache = createHttpCache(new URL(url), { retry: fastRetry });
  cleanups.push(async () => cache.close?.());
  return cache;
}

async function refusal(promise: Promise<unknown>): Promise<UserError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UserError);
  return error as UserError;
}

describe('parentFolderOf', () => {
  it('gives the folder holding a file or a folder, and nothing above the root', () => {
    expect(parentFolderOf('/a/b/c')).toBe('/a/b/');
    expect(parentFolderOf('/a/b/c/')).toBe('/a/b/');
    expect(parentFolderOf('/a/')).toBeUndefined();
    expect(parentFolderOf('/nix-cache-info')).toBeUndefined();
  });
});

describe('WebDavFolders', () => {
  it('NARs that meet the same missing folder at once share one MKCOL', async () => {
    const asked: string[] = [];
    const folders = new WebDavFolders(async (folderPath) => {
      asked.push(folderPath);
      await new Promise((resolve) => setTimeout(resolve, 20));
      return 201;
    });
    await Promise.all(['/c/nar/1.nar', '/c/nar/2.nar', '/c/nar/3.nar'].map((path) => folders.makeParentOf(path)));
    expect(asked).toEqual(['/c/nar/']);
  });
});

describe('missing folders on real servers', () => {
  let nginx: RunningNginx;
  let nginxReadOnly: RunningNginx;
  let rclone: RunningRclone;
  let rcloneReadOnly: RunningRclone;

  beforeAll(async () => {
    [nginx, nginxReadOnly, rclone, rcloneReadOnly] = await Promise.all([
      startNginx(),
      startNginx({ readOnly: true }),
      startRclone(),
      startRclone({ readOnly: true }),
    ]);
    cleanups.push(() => Promise.all([nginx.stop(), nginxReadOnly.stop(), rclone.stop(), rcloneReadOnly.stop()]));
  });

  const requestsUnder = async (server: RunningNginx, prefix: string): Promise<string[]> =>
    (await server.requests()).filter((request) => request.uri.startsWith(prefix)).map((request) => `${request.method} ${request.uri}`);

  it('nginx with create_full_put_path: writes into missing folders and is sent no MKCOL', async () => {
    const cache = open(`${nginx.url}/deep/cache`);
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
    await cache.putFile!('pins/release.json', '{}\n', 'application/json');
    expect(await readFile(join(nginx.root, 'deep', 'cache', 'pins', 'release.json'), 'utf8')).toBe('{}\n');
    expect(await requestsUnder(nginx, '/deep/')).toEqual(['PUT /deep/cache/nix-cache-info', 'PUT /deep/cache/pins/release.json']);
  });

  it('rclone (404 to a PUT into a missing folder): the missing folders are made, parents first, and the PUT sent once more', async () => {
    const cache = open(`${rclone.url}/deep/er/cache`);
    await cache.writeCacheInfo!('StoreDir: /nix/store\n');
    await cache.putFile!('pins/release.json', '{}\n', 'application/json');
    expect(await readFile(join(rclone.root, 'deep', 'er', 'cache', 'pins', 'release.json'), 'utf8')).toBe('{}\n');
    expect(rclone.requests().map((request) => `${request.method} ${request.path}`)).toEqual([
      'PUT /deep/er/cache/nix-cache-info',
      'MKCOL /deep/er/cache/',
      'MKCOL /deep/er/',
      'MKCOL /deep/',
      'MKCOL /deep/er/',
      'MKCOL /deep/er/cache/',
      'PUT /deep/er/cache/nix-cache-info',
      'PUT /deep/er/cache/pins/release.json',
      'MKCOL /deep/er/cache/pins/',
      'PUT /deep/er/cache/pins/release.json',
    ]);
  });

  it('nginx that takes no PUT: one line with its status, and nginx settings in the advice', async () => {
    const error = await refusal(open(`${nginxReadOnly.url}/cache`).writeCacheInfo!('StoreDir: /nix/store\n'));
    expect(error.message).toBe(`the server does not accept uploads at ${nginxReadOnly.url}/cache (HTTP 405)`);
    expect(error.hint).toContain('for nginx: `dav_methods PUT DELETE MKCOL; create_full_put_path on;');
    expect(await requestsUnder(nginxReadOnly, '/cache/')).toEqual(['PUT /cache/nix-cache-info']);
  });

  it('a read-only rclone: names what PUT and MKCOL answered, with advice for any WebDAV server and none for nginx', async () => {
    const error = await refusal(open(`${rcloneReadOnly.url}/cache`).writeCacheInfo!('StoreDir: /nix/store\n'));
    expect(error.message).toBe(`the server does not accept uploads at ${rcloneReadOnly.url}/cache (HTTP 404; MKCOL /cache/ answered 405)`);
    expect(error.hint).toMatch(/WebDAV PUT .*MKCOL .*not read-only/);
    expect(error.hint).not.toMatch(/nginx/);
  });
});
