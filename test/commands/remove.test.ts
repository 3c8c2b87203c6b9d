import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachixRun, type CliResult } from '../helpers/cli.js';
import { requireNix } from '../helpers/nix.js';
import { makeNixConfDirs, removeDir, snapshotFiles, type NixSandboxDirs } from '../helpers/nix-user.js';

let dirs: NixSandboxDirs;
let systemConf: string;
let cacheDir: string;

function run(args: string[]): Promise<CliResult> {
  return cachixRun(args, { env: { ...dirs.env, CACHIX_HOST: 'http://127.0.0.1:9' } });
}

beforeAll(async () => {
  requireNix();
  dirs = await makeNixConfDirs('cachix-remove-');
  systemConf = join(dirs.confDir, 'nix.conf');
  expect((await run(['create', 'demo'])).code).toBe(0);
  expect((await run(['create', 'other'])).code).toBe(0);
  cacheDir = join(dirs.xdgDataHome, 'cachix', 'caches', 'demo');
});
afterAll(async () => removeDir(dirs.root));

describe('cachix remove', () => {
  it('keeps what the user and other caches added since, and takes out only this cache', async () => {
    await writeFile(systemConf, 'sandbox = false\n');
    expect((await run(['use', 'demo'])).code).toBe(0);
    const withDemo = await readFile(systemConf, 'utf8');
    expect((await run(['use', 'other'])).code).toBe(0);
    const both = await readFile(systemConf, 'utf8');
    await writeFile(systemConf, `${both}# added by hand later\nextra-substituters = https://by-hand.example\n`);
    const result = await run(['remove', 'other']);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(systemConf, 'utf8')).toBe(`${withDemo}# added by hand later\nextra-substituters = https://by-hand.example\n`);
    expect((await run(['remove', 'demo'])).code).toBe(0);
    expect(await readFile(systemConf, 'utf8')).toBe(
      'sandbox = false\n# added by hand later\nextra-substituters = https://by-hand.example\n',
    );
  });

  it('changes no byte when the cache was never used', async () => {
    await writeFile(systemConf, 'sandbox = false\n');
    const snapshot = await snapshotFiles(dirs.root);
    const result = await run(['remove', 'demo']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/nothing changed/);
    expect(await snapshotFiles(dirs.root)).toEqual(snapshot);
  });

  it('leaves a substituter the user listed on their own line, and says so', async () => {
    const config = await readFile(join(dirs.xdgConfigHome, 'cachix', 'config.toml'), 'utf8');
    const url = /\[caches\.demo\]\nurl = "(.*)"/.exec(config)![1]!;
    const text = `substituters = https://cache.nixos.org/ ${url}\n`;
    await writeFile(systemConf, text);
    const result = await run(['remove', 'demo']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/stays on line 1/);
    expect(await readFile(systemConf, 'utf8')).toBe(text);
  });

  it('works from the config when the cache itself is gone', async () => {
    await writeFile(systemConf, 'sandbox = false\n');
    expect((await run(['use', 'demo'])).code).toBe(0);
    await rename(cacheDir, `${cacheDir}.gone`);
    try {
      const result = await run(['remove', 'demo']);
      expect(result.code, result.stderr).toBe(0);
      expect(await readFile(systemConf, 'utf8')).toBe('sandbox = false\n');
    } finally {
      await rename(`${cacheDir}.gone`, cacheDir);
    }
  });

  it('nixos mode: deletes only this cache’s module', async () => {
    const folder = join(dirs.root, 'nixos');
    expect((await run(['use', 'demo', '-m', 'nixos', '-d', folder])).code).toBe(0);
    expect((await run(['use', 'other', '-m', 'nixos', '-d', folder])).code).toBe(0);
    const result = await run(['remove', 'demo', '-m', 'nixos', '-d', folder]);
    expect(result.code, result.stderr).toBe(0);
    const files = Object.keys(await snapshotFiles(folder))
      .map((path) => path.slice(folder.length + 1))
      .sort();
    expect(files).toEqual(['cachix.nix', 'cachix/other.nix']);
  });
});
