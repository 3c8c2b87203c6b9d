import { execFile } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import type { CliResult } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { buildWithNix } from '../helpers/nix.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';
import { mountSmallTmpfs } from '../helpers/tmpfs.js';

/*
 * Failures a user can fix, each as the user meets it: exactly the line (and hint) we promise,
 * exit 1, no stack, and nothing half-done left behind.
 */

const execFileAsync = promisify(execFile);

function expectUserError(result: CliResult, message: string, hint?: string): void {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.split('\n');
  const at = lines.indexOf(`cachix: ${message}`);
  expect(at, result.stderr).toBeGreaterThanOrEqual(0);
  if (hint !== undefined) expect(lines[at + 1]).toBe(`  ${hint}`);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr).not.toContain('--verbose for details');
}

let world: CachixEnv;
let nginx: RunningNginx;
let s3: RunningS3rver;
/** 3 MB of random bytes: incompressible, and larger than any limit below. */
let big: string;

beforeAll(async () => {
  world = await makeCachixEnv();
  [nginx, s3, big] = await Promise.all([
    startNginx({ maxBodySize: '64k' }),
    startS3rver(),
    buildWithNix('user-errors', 'mkdir $out; head -c 3000000 /dev/urandom > $out/blob'),
  ]);
});
afterAll(async () => Promise.all([world?.cleanup(), nginx?.stop(), s3?.stop()]));

describe('an HTTP cache', () => {
  it('a NAR larger than the server takes (413): says which limit to raise; no narinfo', async () => {
    expectOk(await world.create('limited', `${nginx.url}/limited`), 'create');
    const result = await world.run(['push', 'limited', big]);
    expectUserError(
      result,
      `the server at ${nginx.url}/limited refused an upload as too large (HTTP 413)`,
      "raise the server's request body limit (nginx: `client_max_body_size 0;`)",
    );
    expect((await readdir(join(nginx.root, 'limited'))).filter((name) => name.endsWith('.narinfo'))).toEqual([]);
  });

  it('a netrc Nix would read that cannot be read: names it', async () => {
    const confDir = join(world.home, 'etc-nix-unreadable');
    // A directory where the file should be: unreadable for root too.
    await mkdir(join(confDir, 'netrc'), { recursive: true });
    const result = await world.run(['create', 'netrcdir', '--url', `${nginx.url}/netrcdir`], { env: { NIX_CONF_DIR: confDir } });
    expectUserError(
      result,
      `cannot read the netrc file ${join(confDir, 'netrc')}: EISDIR: illegal operation on a directory, read`,
      'check its permissions, or set netrc-file',
    );
  });

  it('the spool folder (TMPDIR) fills up: says where, and that nothing half-written reached the cache', async () => {
    const disk = await mountSmallTmpfs('1m');
    try {
      expectOk(await world.create('spoolfull', `${nginx.url}/spoolfull`), 'create');
      // The 413 limit is per request; this server takes the NAR, the spool is what fails.
      const result = await world.run(['push', 'spoolfull', '-m', 'none', big], { env: { TMPDIR: disk.dir } });
      expectUserError(
        result,
        `no space left on the device holding ${disk.dir}, where compressed NARs are written before upload`,
        'free some space and push again (for remote caches, TMPDIR picks where NARs are spooled); nothing half-written was left in the cache',
      );
      expect(await readdir(disk.dir)).toEqual([]);
    } finally {
      await disk.cleanup();
    }
  });
});

describe('an S3 cache', () => {
  it('a bucket that does not exist: names it and the endpoint', async () => {
    const url = s3.s3Url.replace(`s3://${s3.bucket}?`, 's3://no-such-bucket?');
    const result = await world.run(['create', 'nobucket', '--url', url], { env: s3.env });
    expectUserError(
      result,
      `the bucket 'no-such-bucket' does not exist at ${s3.endpoint}`,
      'create it first, or check the bucket name and endpoint',
    );
  });
});

describe('a file cache', () => {
  it('on a read-only file system: says so; nothing written', async () => {
    const disk = await mountSmallTmpfs('8m');
    try {
      const cacheDir = join(disk.dir, 'cache');
      expectOk(await world.create('readonly', `file://${cacheDir}`), 'create');
      await execFileAsync('mount', ['-o', 'remount,ro', disk.dir]);
      const result = await world.run(['push', 'readonly', big]);
      expectUserError(
        result,
        `${cacheDir}/nar is on a read-only file system, and it is where compressed NARs are written before upload`,
        'push to a cache on a writable file system (for remote caches, TMPDIR picks where NARs are spooled); nothing half-written was left in the cache',
      );
      expect((await readdir(cacheDir)).sort()).toEqual(['nar', 'nix-cache-info']);
      expect(await readdir(join(cacheDir, 'nar'))).toEqual([]);
    } finally {
      await execFileAsync('mount', ['-o', 'remount,rw', disk.dir]).catch(() => undefined);
      await disk.cleanup();
    }
  });

  it('that we may not write (an immutable folder, so even root is refused): says so; nothing written', async () => {
    const cacheDir = join(world.home, 'immutable-cache');
    expectOk(await world.create('immutable', `file://${cacheDir}`), 'create');
    await execFileAsync('chattr', ['+i', cacheDir, join(cacheDir, 'nar')]).catch((error: Error) => {
      throw new Error(`this test needs chattr (apt-get install e2fsprogs) on a file system that supports +i: ${error.message}`);
    });
    try {
      const result = await world.run(['push', 'immutable', big]);
      expectUserError(
        result,
        `no permission to write ${cacheDir}/nar, where compressed NARs are written before upload`,
        'check its owner and mode, or push as a user who can write it (for remote caches, TMPDIR picks where NARs are spooled); nothing half-written was left in the cache',
      );
      expect((await readdir(cacheDir)).sort()).toEqual(['nar', 'nix-cache-info']);
      expect(await readdir(join(cacheDir, 'nar'))).toEqual([]);
    } finally {
      await execFileAsync('chattr', ['-i', cacheDir, join(cacheDir, 'nar')]);
    }
  });
});

describe('Nix itself', () => {
  it('not on PATH: says so and how to get it', async () => {
    expectOk(await world.create('nonix'), 'create');
    const result = await world.run(['push', 'nonix', big], { env: { PATH: '/nonexistent' } });
    expectUserError(result, 'cannot run nix: it is not on PATH', 'install Nix (https://nixos.org/download) or fix PATH');
  });
});
