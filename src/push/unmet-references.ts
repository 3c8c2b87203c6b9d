// A pushed path whose reference the cache lacks cannot be substituted from this cache alone: Nix
// will need that reference from somewhere else. Left out on purpose (--exclude, --no-closure),
// it is worth one line each, said before the upload, so CI logs show it next to the push.
import type { BinaryCache } from '../caches/cache.js';
import { hashPartOf } from '../nix/store-path.js';
import { queryPathInfo, type PathInfo } from '../store/path-info.js';
import { upstreamKeyOf } from '../store/upstream.js';
import { excludedBy } from './exclude.js';
import type { FilteredPaths, PathSelection } from './path-filter.js';

export async function warnUnmetReferences(
  cache: BinaryCache,
  toPush: readonly PathInfo[],
  listed: ReadonlySet<string>,
  filtered: FilteredPaths,
  selection: PathSelection | undefined,
  log: (line: string) => void,
): Promise<void> {
  const excluded = new Set(filtered.excluded.map((info) => info.path));
  const outside = new Set<string>();
  for (const info of toPush) for (const reference of info.references) if (!listed.has(reference)) outside.add(reference);
  // Only --no-closure leaves references outside the set; those signed upstream need no warning.
  const reasons = new Map<string, string>([...excluded].map((path) => [path, 'excluded by --exclude']));
  if (outside.size > 0) {
    for (const info of await queryPathInfo([...outside])) {
      if (selection && upstreamKeyOf(info, selection.upstreamKeys) !== undefined) continue;
      const byExclude = selection && excludedBy(info.path, selection.excludes);
      reasons.set(info.path, byExclude ? 'excluded by --exclude' : 'not pushed with --no-closure');
    }
  }
  const wanted = new Set<string>();
  for (const info of toPush) for (const reference of info.references) if (reasons.has(reference)) wanted.add(reference);
  if (wanted.size === 0) return;
  const missing = await cache.missing([...wanted].map(hashPartOf));
  for (const info of toPush) {
    const lacking = info.references.filter((reference) => reasons.has(reference) && missing.has(hashPartOf(reference)));
    if (lacking.length === 0) continue;
    const more = lacking.length > 1 ? ` and ${lacking.length - 1} more` : '';
    log(
      `warning: ${info.path} references ${lacking[0]} (${reasons.get(lacking[0]!)})${more}, which ${cache.description} lacks: Nix will need it from another cache`,
    );
  }
}
