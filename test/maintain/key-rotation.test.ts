import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { narInfoFingerprint, parseNarInfo } from '../../src/nix/narinfo.js';
import { generateSigningKey, parsePublicKey, parseSigningKey, signFingerprint, verifySignature } from '../../src/nix/signing.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { expectOk, makeLocalCache, type LocalCache } from '../helpers/cachix-env.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';
import { substituteThenDiscard } from '../helpers/substitute.js';
import { directorySink, writeSyntheticCache } from '../helpers/synthetic-cache.js';

/**
 * Rotating a cache's key without cutting clients off: generate-keypair --rotate, then sign (the
 * new key on every narinfo), then sign --drop (the old key gone), judged by real Nix trusting
 * one key or the other.
 */
let cache: LocalCache;
let first: string;
let second: string;
let oldPublic: string;
let newPublic: string;

const hashOf = (path: string): string => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
const narInfoOf = (dir: string, path: string): Promise<string> => readFile(join(dir, `${hashOf(path)}.narinfo`), 'utf8');
const sigNames = (text: string): string[] => parseNarInfo(text).sigs.map((sig) => sig.slice(0, sig.indexOf(':')));

beforeAll(async () => {
  requireNix();
  cache = await makeLocalCache('rot');
  oldPublic = cache.created.stdout.trim();
  first = await buildWithNix('rotation-first', 'echo first > $out');
  second = await buildWithNix('rotation-second', 'echo second > $out');
  expectOk(await cache.world.run(['push', 'rot', first]), 'push before the rotation');
});
afterAll(async () => cache?.cleanup());

describe('key rotation', () => {
  it('--rotate makes rot-2, keeps rot-1 retired, and prints the new key and the steps', async () => {
    const rotated = expectOk(await cache.world.run(['generate-keypair', 'rot', '--rotate']), 'rotate');
    newPublic = rotated.stdout.trim();
    expect(parsePublicKey(newPublic).name).toBe('rot-2');
    expect(rotated.stderr).toContain('cachix sign rot');
    expect(rotated.stderr).toContain('cachix sign rot --drop rot-1');
    expect(rotated.stderr).toContain('narinfo-cache-positive-ttl');
    const config = await readFile(cache.world.configPath, 'utf8');
    expect(config).toContain(`public_key = "${newPublic}"`);
    expect(config).toMatch(/retired_signing_keys = \[\s*"rot-1:/);
    // Without --rotate, an existing key is never replaced.
    expect((await cache.world.run(['generate-keypair', 'rot'])).code).toBe(1);
  });

  it('a push after the rotation is signed with the new key only', async () => {
    expectOk(await cache.world.run(['push', 'rot', second]), 'push after the rotation');
    expect(sigNames(await narInfoOf(cache.cacheDir, second))).toEqual(['rot-2']);
    expect(sigNames(await narInfoOf(cache.cacheDir, first))).toEqual(['rot-1']);
  });

  it('during the rollover verify accepts either key', async () => {
    const verified = await cache.world.run(['verify', 'rot', first, second]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('after sign, Nix trusting only the new key substitutes everything', async () => {
    const before = await substituteThenDiscard(first, `file://${cache.cacheDir}`, newPublic);
    expect(before.ok).toBe(false);
    const signed = expectOk(await cache.world.run(['sign', 'rot']), 'sign');
    expect(signed.stderr).toMatch(/2 narinfos: 1 signed with rot-2, 0 .*, 1 already done, 0 not ours/);
    expect(sigNames(await narInfoOf(cache.cacheDir, first))).toEqual(['rot-1', 'rot-2']);
    for (const path of [first, second]) {
      const substituted = await substituteThenDiscard(path, `file://${cache.cacheDir}`, newPublic);
      expect(substituted.ok, substituted.stderr).toBe(true);
    }
  });

  it('a narinfo no key of the cache signed is not re-signed, and is named', async () => {
    const stranger = generateSigningKey('stranger-1');
    const dir = cache.cacheDir;
    const text = await narInfoOf(dir, first);
    const forged = text.replace(/NarSize: (\d+)/, (_, size: string) => `NarSize: ${Number(size) + 1}`);
    const info = parseNarInfo(forged);
    const forgedSigned = forged.replace(/^Sig: .*\n/gm, '') + `Sig: ${signFingerprint(stranger, narInfoFingerprint(info))}\n`;
    const name = `${hashOf(first)}.narinfo`;
    await writeFile(join(dir, name), forgedSigned);
    try {
      const result = await cache.world.run(['sign', 'rot']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`not re-signed (no valid signature by a key of rot): ${name}`);
      expect(await readFile(join(dir, name), 'utf8')).toBe(forgedSigned);
    } finally {
      await writeFile(join(dir, name), text);
    }
  });

  it('a SIGKILL mid-sign leaves every narinfo whole and signed; a rerun finishes', async () => {
    const dir = cache.cacheDir;
    const synthetic = await writeSyntheticCache(directorySink(dir), 1500, 7);
    const oldKey = parseSigningKey(/retired_signing_keys = \[\s*"([^"]+)"/.exec(await readFile(cache.world.configPath, 'utf8'))![1]!);
    // The synthetic narinfos signed with the retired key, as pushes before the rotation were.
    await Promise.all(
      synthetic.storePaths.map(async (path) => {
        const file = join(dir, `${hashOf(path)}.narinfo`);
        const text = await readFile(file, 'utf8');
        await writeFile(file, `${text}Sig: ${signFingerprint(oldKey, narInfoFingerprint(parseNarInfo(text)))}\n`);
      }),
    );
    const keys = [parsePublicKey(oldPublic), parsePublicKey(newPublic)];
    // Killed once a thousand narinfos are done (sign says so), with the rest still to come.
    const child = spawn(process.execPath, [CACHIX_BIN, 'sign', 'rot'], {
      env: { ...process.env, ...cache.world.env, CI: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('[1000/')) child.kill('SIGKILL');
    });
    const signal = await new Promise((resolve) => child.once('close', (_code, killedBy) => resolve(killedBy)));
    expect(signal, stderr).toBe('SIGKILL');
    let unsigned = 0;
    for (const name of (await readdir(dir)).filter((entry) => entry.endsWith('.narinfo'))) {
      const info = parseNarInfo(await readFile(join(dir, name), 'utf8'));
      const fingerprint = narInfoFingerprint(info);
      expect(info.sigs.length, name).toBeGreaterThan(0);
      for (const sig of info.sigs) expect(verifySignature(sig, fingerprint, keys), `${name}: ${sig}`).toBe(true);
      if (!info.sigs.some((sig) => sig.startsWith('rot-2:'))) unsigned++;
    }
    expect(unsigned).toBeGreaterThan(0);
    expectOk(await cache.world.run(['sign', 'rot']), 'sign again');
    for (const name of (await readdir(dir)).filter((entry) => entry.endsWith('.narinfo')))
      expect(sigNames(await readFile(join(dir, name), 'utf8')), name).toContain('rot-2');
  });

  it('after sign --drop rot-1, Nix trusting only the old key substitutes nothing, and rot-1 is forgotten', async () => {
    const dropped = expectOk(await cache.world.run(['sign', 'rot', '--drop', 'rot-1']), 'sign --drop');
    expect(dropped.stderr).toContain('rot-1 is no longer trusted');
    for (const path of [first, second]) {
      expect(sigNames(await narInfoOf(cache.cacheDir, path))).toEqual(['rot-2']);
      const substituted = await substituteThenDiscard(path, `file://${cache.cacheDir}`, oldPublic);
      expect(substituted.ok).toBe(false);
      expect(substituted.stderr).toMatch(/not signed by any of the keys/);
    }
    expect(await readFile(cache.world.configPath, 'utf8')).not.toContain('retired_signing_keys');
    expect((await cache.world.run(['sign', 'rot', '--drop', 'rot-2'])).code).toBe(1);
  });
});

describe('use during a rollover', () => {
  it('writes both public keys, so clients accept old and new signatures', async () => {
    const world = await makeLocalCache('roll');
    try {
      const oldKey = world.created.stdout.trim();
      const newKey = expectOk(await world.world.run(['generate-keypair', 'roll', '--rotate']), 'rotate').stdout.trim();
      const out = join(world.work, 'nixos');
      expectOk(await world.world.run(['use', 'roll', '-m', 'nixos', '-d', out]), 'use');
      const module = await readFile(join(out, 'cachix', 'roll.nix'), 'utf8');
      expect(module).toContain(oldKey);
      expect(module).toContain(newKey);
    } finally {
      await world.cleanup();
    }
  });
});
