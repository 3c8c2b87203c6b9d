import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { filesUnder } from '../helpers/cache-files.js';
import type { CliResult } from '../helpers/cli.js';
import { startNginx, type RunningNginx } from '../helpers/nginx.js';
import { directorySink, writeSyntheticCache, type SyntheticCache } from '../helpers/synthetic-cache.js';

/*
 * What info, pin, gc and delete say to input they must refuse: one `cachix:` line (and at most a
 * hint), the exit code, no stack trace, and every file of the cache exactly as before.
 */

let world: CachixEnv;
let scratch: string;
let cache: SyntheticCache;
let readOnly: RunningNginx;
let unlisted: RunningNginx;
const fileUrl = (): string => `file://${scratch}/cache`;

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-maintain-bad-'));
  cache = await writeSyntheticCache(directorySink(join(scratch, 'cache')), 30, 7);
  [readOnly, unlisted] = await Promise.all([
    startNginx({ listing: 'propfind', bearerToken: 'only-the-owner-writes' }),
    startNginx({ listing: undefined }),
  ]);
  await writeSyntheticCache(directorySink(join(readOnly.root, 'c')), 30, 7);
  await writeSyntheticCache(directorySink(join(unlisted.root, 'c')), 30, 7);
});
afterAll(async () => {
  await Promise.all([world?.cleanup(), readOnly?.stop(), unlisted?.stop(), rm(scratch, { recursive: true, force: true })]);
});

function expectOneLine(result: CliResult, exitCode: number, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(exitCode);
  const lines = result.stderr.trim().split('\n');
  expect(lines.length, result.stderr).toBeLessThanOrEqual(2);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stdout).toBe('');
}

const absent = '/nix/store/00000000000000000000000000000000-not-in-the-cache';

describe.each([
  ['an unknown pin', () => ['pin', fileUrl(), 'nosuch', '--delete'], 1, /^cachix: there is no pin 'nosuch' in file:\/\//],
  [
    'pinning a path not in the cache',
    () => ['pin', fileUrl(), 'p', absent],
    1,
    /^cachix: \/nix\/store\/0+-not-in-the-cache is not in file:/,
  ],
  ['deleting a path not in the cache', () => ['delete', fileUrl(), absent], 1, /is not in file:.*; nothing was deleted$/],
  ['a duration that does not parse', () => ['gc', fileUrl(), '--older-than', 'soon'], 2, /^cachix: --older-than 'soon' is not a duration$/],
  ['a size that does not parse', () => ['gc', fileUrl(), '--max-size', 'lots'], 2, /^cachix: --max-size 'lots' is not a size$/],
  ['gc with nothing to keep by', () => ['gc', fileUrl()], 2, /^cachix: gc needs to know what to keep besides pins/],
  ['a bad pin name', () => ['pin', fileUrl(), '../evil', cache.pinned], 2, /^cachix: '\.\.\/evil' is not a pin name/],
  [
    'two keep policies',
    () => ['pin', fileUrl(), 'p', cache.pinned, '--keep-days', '3', '--keep-forever'],
    2,
    /^cachix: give at most one of/,
  ],
] as const)('%s', (_label, args, exitCode, pattern) => {
  it('is one line, and nothing in the cache changes', async () => {
    const before = await filesUnder(join(scratch, 'cache'));
    expectOneLine(await world.run([...args()]), exitCode, pattern);
    expect(await filesUnder(join(scratch, 'cache'))).toEqual(before);
  });
});

describe('servers that cannot do it', () => {
  it('gc of a cache without write access: one line, nothing deleted', async () => {
    const before = await filesUnder(join(readOnly.root, 'c'));
    expectOneLine(await world.run(['gc', `${readOnly.url}/c`, '--older-than', '0']), 1, /^cachix: .*(401|not authorized|denied)/i);
    expect(await filesUnder(join(readOnly.root, 'c'))).toEqual(before);
  });

  it('gc of a server that cannot list: one line, naming how to enable a listing', async () => {
    const before = await filesUnder(join(unlisted.root, 'c'));
    const result = await world.run(['gc', `${unlisted.url}/c`, '--older-than', '0']);
    expectOneLine(
      result,
      1,
      /^cachix: http:\/\/127\.0\.0\.1:\d+\/c cannot list its files \(.*\), and info, pin, gc and delete need a listing$/,
    );
    expect(result.stderr).toContain('dav_ext_methods PROPFIND');
    expect(await filesUnder(join(unlisted.root, 'c'))).toEqual(before);
  });

  it('info of the same server says the same', async () => {
    expectOneLine(await world.run(['info', `${unlisted.url}/c`]), 1, /cannot list its files/);
  });
});
