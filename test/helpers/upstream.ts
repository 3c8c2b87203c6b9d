import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NIX_FEATURES, run } from './nix.js';

/**
 * A key pair named like cache.nixos.org's: signing a local path with it makes the store's record
 * look exactly like that of a path substituted from cache.nixos.org (the name is all a filter sees).
 */
export async function makeUpstreamKey(name = 'cache.nixos.org-1'): Promise<{ name: string; secretFile: string; publicKey: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cachix-upstream-key-'));
  const secretFile = join(dir, 'secret');
  const publicFile = join(dir, 'public');
  await run('nix-store', ['--generate-binary-cache-key', name, secretFile, publicFile]);
  return { name, secretFile, publicKey: (await readFile(publicFile, 'utf8')).trim() };
}

/** `nix store sign -k KEYFILE PATH`: adds the signature to the local Nix database. */
export async function signLocally(secretFile: string, paths: string[]): Promise<void> {
  await run('nix', [...NIX_FEATURES, 'store', 'sign', '-k', secretFile, ...paths]);
}

/** A second cache standing in for upstream: what `nix copy` puts there keeps the path's signatures. */
export async function copyToUpstream(cacheDir: string, paths: string[]): Promise<void> {
  await run('nix', [...NIX_FEATURES, 'copy', '--to', `file://${cacheDir}`, ...paths]);
}
