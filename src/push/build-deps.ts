// push --with-build-deps: the paths given plus what a rebuild of them needs, so a CI cache also
// holds the sources and compilers (cachix #9). The upstream filter still applies afterwards.
import { buildClosureOf } from '../store/derivations.js';

export async function withBuildDeps(storePaths: string[], log: (line: string) => void): Promise<string[]> {
  const { paths, withoutDeriver } = await buildClosureOf(storePaths);
  if (withoutDeriver.length > 0) {
    const more = withoutDeriver.length > 1 ? ` and ${withoutDeriver.length - 1} more` : '';
    log(`warning: ${withoutDeriver[0]}${more} has no derivation in this store (substituted?): pushing its runtime closure only`);
  }
  return [...new Set([...storePaths, ...paths])];
}
