import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './nix.js';

/**
 * Real Nix substitutes `path` from `cacheUrl` into a fresh chroot store, trusting only
 * `publicKey`, with signatures required. Returns where the store root is and what Nix said.
 */
export async function substituteIntoFreshStore(
  path: string,
  cacheUrl: string,
  publicKey: string,
): Promise<{ root: string; ok: boolean; stderr: string }> {
  const root = await mkdtemp(join(tmpdir(), 'cachix-fresh-store-'));
  try {
    await run('nix-store', [
      '--store',
      root,
      '--realise',
      path,
      '--option',
      'substituters',
      cacheUrl,
      '--option',
      'trusted-public-keys',
      publicKey,
      '--option',
      'require-sigs',
      'true',
      '--max-jobs',
      '0',
    ]);
    return { root, ok: true, stderr: '' };
  } catch (error) {
    return { root, ok: false, stderr: String((error as { stderr?: string }).stderr) };
  }
}

/** The same, with the fresh store removed afterwards: for tests that only need the verdict. */
export async function substituteThenDiscard(path: string, cacheUrl: string, publicKey: string): Promise<{ ok: boolean; stderr: string }> {
  const { root, ok, stderr } = await substituteIntoFreshStore(path, cacheUrl, publicKey);
  await rm(root, { recursive: true, force: true }).catch(() => undefined);
  return { ok, stderr };
}

/** Substitutes or throws with what Nix said (so a test can match Nix's refusal). */
export async function substituteOrThrow(path: string, cacheUrl: string, publicKey: string): Promise<void> {
  const { ok, stderr } = await substituteThenDiscard(path, cacheUrl, publicKey);
  if (!ok) throw new Error(stderr);
}
