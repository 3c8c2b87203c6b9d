import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPublicKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import { cachix, type CliResult } from '../helpers/cli.js';
import { requireNix } from '../helpers/nix.js';
import { makeNixConfDirs, nixShowConfig, removeDir, snapshotFiles, type NixSandboxDirs } from '../helpers/nix-user.js';

/**
 * `cachix use NAME` for a cache the config does not know: as with cachix itself, the cachix API
 * host says where it is and which key signs it. No cachix server runs here; the double follows
 * the published API.
 */
const TOKEN = 'use-token-0123456789abcdef';
const publicKey = formatPublicKey(publicKeyOf(generateSigningKey('demo.cachix.org-1')));
const otherKey = formatPublicKey(publicKeyOf(generateSigningKey('demo.cachix.org-1')));

let double: CachixApiDouble;
let dirs: NixSandboxDirs;
let systemConf: string;

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return cachix(['--host', double.url, ...args], { env: { ...dirs.env, ...env } });
}

beforeAll(async () => {
  requireNix();
  double = await startCachixApiDouble({
    token: TOKEN,
    caches: [
      { name: 'demo', publicSigningKeys: [publicKey], isPublic: true },
      { name: 'secret', publicSigningKeys: [publicKey], isPublic: false },
    ],
  });
  dirs = await makeNixConfDirs('cachix-use-api-');
  systemConf = join(dirs.confDir, 'nix.conf');
  await writeFile(systemConf, 'substituters = https://cache.nixos.org/\n');
});
afterAll(async () => {
  await double?.stop();
  if (dirs) await removeDir(dirs.root);
});

describe('cachix use with a cache on the cachix API', () => {
  it('takes the substituter and the key from the API, and Nix reads them', async () => {
    const result = await run(['use', 'demo']);
    expect(result.code, result.stderr).toBe(0);
    const nix = await nixShowConfig(dirs.env);
    expect(nix.get('substituters')).toContain(double.uriOf('demo'));
    expect(nix.get('substituters')).toContain('https://cache.nixos.org/');
    expect(nix.get('trusted-public-keys')).toContain(publicKey);
    const removed = await run(['remove', 'demo']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await readFile(systemConf, 'utf8')).toBe('substituters = https://cache.nixos.org/\n');
  });

  it('a pinned key the API does not publish is refused, and nothing is written', async () => {
    const before = await snapshotFiles(dirs.root);
    const result = await run(['use', 'demo', '--public-key', otherKey]);
    expect(result.code).toBe(1);
    // After the note that `demo`, not in the config, is looked up on the API host.
    expect(result.stderr.split('\n').filter((line) => !line.startsWith('note: '))[0]).toMatch(/^cachix: /);
    expect(result.stderr).toContain(otherKey.split(':')[0]);
    expect(await snapshotFiles(dirs.root)).toEqual(before);
  });

  it('a private cache: the token goes into the netrc Nix reads, 0600, never onto the terminal', async () => {
    const result = await run(['use', 'secret'], { CACHIX_AUTH_TOKEN: TOKEN });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    const netrc = join(dirs.confDir, 'netrc');
    expect(await readFile(netrc, 'utf8')).toContain(`password ${TOKEN}`);
    expect((await stat(netrc)).mode & 0o777).toBe(0o600);
    expect((await nixShowConfig(dirs.env)).get('substituters')).toContain(double.uriOf('secret'));
  });

  it('a private cache without a token says what to do', async () => {
    const result = await run(['use', 'secret', '-O', join(dirs.root, 'out')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/token|authtoken/);
  });
});
