import type { Context, InputStream } from '../context.js';
import { UserError } from '../errors.js';
import type { PushFlags } from '../push/prepare.js';
import { pushGivenPaths, type ListingFlags } from '../push/push-given.js';
import { sortStdinPaths } from '../store/stdin-paths.js';

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

/**
 * The valid store paths piped in, and a closing note on the entries skipped; undefined when none
 * is left to push (said on stderr): an empty list is what a CI job that built nothing new sends.
 */
async function readStdinPaths(context: Context): Promise<{ given: string[]; skippedNote?: string } | undefined> {
  const entries = await readPathsFromStdin(context.stdin);
  if (entries.length === 0) {
    context.log('no store paths on stdin: nothing to push');
    return undefined;
  }
  const { valid, skipped } = await sortStdinPaths(entries, context.storeDir);
  for (const { entry, reason } of skipped) context.log(`warning: not pushing ${entry}: ${reason}`);
  const skippedNote =
    skipped.length > 0
      ? `skipped ${skipped.length} of ${entries.length} entries from stdin that are not valid store paths (named above)`
      : undefined;
  if (valid.length === 0) {
    context.log(`${skippedNote}: nothing to push`);
    return undefined;
  }
  return { given: valid, skippedNote };
}

export async function run(context: Context, cacheName: string, pathArgs: string[], flags: PushFlags & ListingFlags): Promise<void> {
  if (pathArgs.length > 0) return pushGivenPaths(context, cacheName, pathArgs, flags);
  const fromStdin = await readStdinPaths(context);
  if (fromStdin === undefined) return;
  return pushGivenPaths(context, cacheName, fromStdin.given, flags, fromStdin.skippedNote);
}
