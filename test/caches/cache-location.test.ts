import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFileUrlText, directoryAsCacheUrl } from '../../src/caches/cache-location.js';
import { expectOk, makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { cachix } from '../helpers/cli.js';
import { buildWithNix } from '../helpers/nix.js';

let world: CachixEnv;
let scratch: string;
const leftAtRoot: string[] = [];

beforeAll(async () => {
  world = await makeCachixEnv();
  scratch = await mkdtemp(join(tmpdir(), 'cachix-location-'));
});
afterAll(async () => {
  // Only what a broken build of ours would have made at / (never anything that was there before).
  for (const path of leftAtRoot) await rm(path, { recursive: true, force: true });
  await Promise.all([world?.cleanup(), rm(scratch, { recursive: true, force: true })]);
});

describe('file URLs that are not absolute', () => {
  it('`create --url file:` is refused; nothing is written at / and no cache is registered', async () => {
    const hadCacheInfo = existsSync('/nix-cache-info');
    const hadNar = existsSync('/nar');
    const result = await world.run(['create', 'k', '--url', 'file:']);
    if (!hadCacheInfo && existsSync('/nix-cache-info')) leftAtRoot.push('/nix-cache-info');
    if (!hadNar && existsSync('/nar')) await rmdir('/nar').catch(() => undefined);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cachix: 'file:' is not an absolute file URL/);
    expect(result.stderr).toMatch(/file:\/\/\/absolute\/path/);
    expect(hadCacheInfo || !existsSync('/nix-cache-info')).toBe(true);
    expect(existsSync(world.configPath)).toBe(false);
  });

  it('`file:./dir` is refused, not resolved to /dir', async () => {
    const name = `cachix-test-${process.pid}-${Date.now()}`;
    leftAtRoot.push(`/${name}`);
    const result = await world.run(['create', 'k', '--url', `file:./${name}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is not an absolute file URL/);
    expect(existsSync(`/${name}`)).toBe(false);
  });

  it('`file://relative` says the word became a host name, with what to write instead', async () => {
    const result = await world.run(['push', 'file://relative/cache', '/nix/store/00000000000000000000000000000000-x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cachix: 'file:\/\/relative\/cache' names 'relative' as a host/);
    expect(result.stderr).not.toMatch(/must be "localhost"/);
  });

  it('absolute file URLs, with or without localhost, are accepted', () => {
    expect(() => checkFileUrlText('file:///srv/cache')).not.toThrow();
    expect(() => checkFileUrlText('file://localhost/srv/cache')).not.toThrow();
    expect(() => checkFileUrlText('https://example.org/cache')).not.toThrow();
  });
});

describe('a directory given as a path', () => {
  it('is resolved against the current directory, saying so', () => {
    expect(directoryAsCacheUrl('./c', '/srv')).toEqual({
      url: 'file:///srv/c',
      note: 'using the directory /srv/c (file:///srv/c) as the cache',
    });
    expect(directoryAsCacheUrl('/srv/c', '/elsewhere')).toEqual({ url: 'file:///srv/c', note: undefined });
  });

  it('`create --url ./dir` makes the cache there, and `push ./dir` finds it', async () => {
    const cwd = join(scratch, 'work');
    await mkdir(cwd, { recursive: true });
    const created = await cachix(['create', 'rel', '--url', './mycache'], { env: world.env, cwd });
    expectOk(created, 'create');
    expect(created.stderr).toContain(`using the directory ${join(cwd, 'mycache')}`);
    expect(existsSync(join(cwd, 'mycache', 'nix-cache-info'))).toBe(true);
    expect(await readFile(world.configPath, 'utf8')).toContain(`url = "${pathToFileURL(join(cwd, 'mycache')).href}"`);

    const path = await buildWithNix('location', 'echo hi > $out');
    const key = /signing_key = "([^"]+)"/.exec(await readFile(world.configPath, 'utf8'))![1]!;
    const pushed = await cachix(['push', './mycache', path], { env: { ...world.env, CACHIX_SIGNING_KEY: key }, cwd });
    expectOk(pushed, 'push ./mycache');
    expect(existsSync(join(cwd, 'mycache', `${path.slice(11, 43)}.narinfo`))).toBe(true);
  });
});
