import type { Context, InputStream } from '../context.js';
import { UserError } from '../errors.js';
import { pushPaths, summaryLine } from '../push/pipeline.js';
import { queryValidPaths } from '../store/path-info.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { preparePush, type PushFlags } from '../push/prepare.js';

async function readPathsFromStdin(stdin: InputStream): Promise<string[]> {
  if (stdin.isTTY) {
    throw new UserError(
      'no store paths given',
      'pass them as arguments (cachix push NAME ./result) or pipe them in (nix-store -qR ./result | cachix push NAME)',
    );
  }
  let text = '';
  for await (const chunk of stdin) text += chunk.toString();
  return text.split(/\s+/).filter(Boolean);
}

export async function run(context: Context, cacheName: string, pathArgs: string[], flags: PushFlags): Promise<void> {
  const given = pathArgs.length > 0 ? pathArgs : await readPathsFromStdin(context.stdin);
  if (given.length === 0)
    throw new UserError('no store paths given on stdin', 'pipe store paths in, one per line, or pass them as arguments');
  // Opening the cache and asking Nix about the paths are independent: do both at once. When
  // both fail, the cache's error (no key, no such cache) is the one reported, every time.
  const [cacheSide, pathSide] = await Promise.allSettled([
    preparePush(context, cacheName, flags),
    resolveStorePaths(given, context.storeDir).then(async (paths) => (await requireValid(paths), paths)),
  ]);
  if (cacheSide.status === 'rejected') throw cacheSide.reason;
  const prepared = cacheSide.value;
  try {
    if (pathSide.status === 'rejected') throw pathSide.reason;
    const summary = await pushPaths(prepared.cache, pathSide.value, prepared.pushOptions, prepared.progress);
    prepared.progress.finish(summaryLine(summary, prepared.cache.description));
  } finally {
    await prepared.cache.close?.();
  }
}

/** Asked first, and cheaply: `nix path-info` on an invalid path would go and query substituters. */
async function requireValid(storePaths: string[]): Promise<void> {
  const valid = new Set(await queryValidPaths(storePaths));
  const invalid = storePaths.filter((path) => !valid.has(path));
  if (invalid.length > 0) {
    const more = invalid.length > 1 ? ` (and ${invalid.length - 1} more)` : '';
    throw new UserError(
      `${invalid[0]}${more} is not a valid path in the Nix store`,
      'build or fetch it first (nix-build, nix-store --realise), then push',
    );
  }
}
