// Derivations behind store paths, asked through nix-store: what --with-build-deps pushes and what
// the post-build hook's DRV_PATH resolves to.
import { queryPathInfo, queryValidPaths, runNixBatched } from './path-info.js';

async function nixStoreLines(args: string[], paths: string[]): Promise<string[]> {
  const lines: string[] = [];
  await runNixBatched('nix-store', args, paths, undefined, (stdout) => lines.push(...stdout.split('\n').filter(Boolean)));
  return lines;
}

/** The outputs of these derivations that are valid in the store (built or substituted). */
export async function validOutputsOf(derivations: string[]): Promise<string[]> {
  if (derivations.length === 0) return [];
  const validDerivations = await queryValidPaths(derivations);
  const outputs = await nixStoreLines(['--query', '--outputs'], validDerivations);
  return queryValidPaths([...new Set(outputs)]);
}

export interface BuildClosure {
  /** The derivation closures with their valid outputs (`nix-store -qR --include-outputs`). */
  paths: string[];
  /** Given paths whose deriver is not in this store (substituted, or garbage collected). */
  withoutDeriver: string[];
}

/** What rebuilding these paths needs: each deriver's closure, sources, compilers and all, where built. */
export async function buildClosureOf(storePaths: string[]): Promise<BuildClosure> {
  const infos = await queryPathInfo(storePaths);
  const derivers = infos.map((info) => info.deriver).filter((deriver): deriver is string => deriver !== undefined);
  const validDerivers = new Set(await queryValidPaths(derivers));
  const withoutDeriver = infos.filter((info) => !info.deriver || !validDerivers.has(info.deriver)).map((info) => info.path);
  const closure = validDerivers.size === 0 ? [] : await nixStoreLines(['--query', '--requisites', '--include-outputs'], [...validDerivers]);
  return { paths: await queryValidPaths([...new Set(closure)]), withoutDeriver };
}
