import { verifyPath } from '../caches/verify-path.js';
import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { UserError, messageOf } from '../errors.js';
import { parsePublicKey, type PublicKey } from '../nix/signing.js';
import { queryPathInfo, resolveStorePaths, type PathInfo } from '../store/path-info.js';

export interface VerifyOptions {
  publicKey?: string;
}

function parseKeys(texts: string[], where: string): PublicKey[] {
  return texts.map((text) => {
    try {
      return parsePublicKey(text);
    } catch (error) {
      throw new UserError(`${where}: ${messageOf(error)}`, 'a public key looks like NAME-1:<44 base64 characters>');
    }
  });
}

async function localInfo(path: string): Promise<PathInfo | undefined> {
  try {
    return (await queryPathInfo([path]))[0];
  } catch {
    return undefined;
  }
}

/**
 * `cachix verify CACHE PATHS...`: one line per path on stdout, `ok` or what does not hold;
 * exit 1 when any path fails.
 */
export async function run(context: Context, cacheName: string, paths: string[], options: VerifyOptions): Promise<number> {
  const storePaths = await resolveStorePaths(paths);
  const opened = await openCache(cacheName, context);
  try {
    const entry = opened.entry;
    const keyTexts = options.publicKey ? [options.publicKey] : entry?.pinnedPublicKey ? [entry.pinnedPublicKey] : entry?.publicKey ? [entry.publicKey] : (await opened.cache.info()).publicKeys;
    if (keyTexts.length === 0) {
      throw new UserError(`no public key is known for ${opened.name}`, `pass the key that signs it: cachix verify ${cacheName} --public-key NAME-1:... PATHS`);
    }
    const keys = parseKeys(keyTexts, options.publicKey ? '--public-key' : `the key of ${opened.name}`);
    let failures = 0;
    for (const storePath of storePaths) {
      const verdict = await verifyPath(opened.cache, storePath, keys, await localInfo(storePath));
      if (verdict.problems.length > 0) failures += 1;
      const status = verdict.problems.length === 0 ? 'ok' : `FAIL: ${verdict.problems.join('; ')}`;
      // Problems quote what the server sent: no control characters (terminal escapes) reach the terminal.
      const line = `${storePath} ${status}${verdict.notes.length ? ` (${verdict.notes.join('; ')})` : ''}`.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
      process.stdout.write(`${line}\n`);
    }
    if (failures > 0) process.stderr.write(`${failures} of ${storePaths.length} paths failed verification in ${opened.name}\n`);
    return failures > 0 ? 1 : 0;
  } finally {
    await opened.cache.close?.();
  }
}
