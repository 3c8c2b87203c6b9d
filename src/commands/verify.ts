import { prepareVerify, verifyOrder, verifyPath } from '../maintain/verify-path.js';
import { absentListings } from '../maintain/verify-listings.js';
import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { UserError } from '../errors.js';
import { formatPublicKey, parseSigningKey, publicKeyOf } from '../nix/signing.js';
import { queryPathInfo, type PathInfo } from '../store/path-info.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { printable } from '../util/printable.js';
import { parsePublicKeyFrom } from '../caches/public-key.js';
import { upstreamKeyNames, upstreamKeyOf } from '../store/upstream.js';
import { hashPartOf } from '../nix/store-path.js';

export interface VerifyOptions {
  publicKey?: string;
  recursive?: boolean;
  upstreamKey?: string[];
  includeUpstream?: boolean;
  /** Also check each NAR file against its narinfo's FileHash (Nix never does). */
  fileHash?: boolean;
}

/** Paths checked at once: each is a narinfo and a NAR fetched and hashed. */
const VERIFY_CONCURRENCY = 8;

/** The local store's record of each path (or of its closure), or undefined for a path it lacks. */
async function localInfos(paths: string[], recursive: boolean): Promise<Array<[string, PathInfo | undefined]>> {
  if (recursive) return (await queryPathInfo(paths, { recursive: true })).map((info) => [info.path, info]);
  // One query for all; only when some path is not valid here, one query per path to find which.
  const all = await queryPathInfo(paths).catch(() => undefined);
  const byPath = new Map(all?.map((info) => [info.path, info]));
  const result: Array<[string, PathInfo | undefined]> = [];
  for (const path of paths) result.push([path, all ? byPath.get(path) : await localInfo(path)]);
  return result;
}

async function localInfo(path: string): Promise<PathInfo | undefined> {
  try {
    return (await queryPathInfo([path]))[0];
  } catch {
    return undefined;
  }
}

/**
 * `cachix verify CACHE PATHS...`: one line per path on stdout, in the order given (with
 * `--recursive`, each path's closure), `ok` or what does not hold; exit 1 when any path fails.
 */
export async function run(context: Context, cacheName: string, paths: string[], options: VerifyOptions): Promise<number> {
  const storePaths = await resolveStorePaths(paths);
  // Nix lists the paths while the cache is opened; a failure is reported in the order it was
  // before (the cache and its key first).
  const listing = localInfos(storePaths, options.recursive ?? false);
  listing.catch(() => undefined);
  const opened = await openCache(cacheName, context);
  try {
    const entry = opened.entry;
    const keyTexts = options.publicKey
      ? [options.publicKey]
      : entry?.pinnedPublicKey
        ? [entry.pinnedPublicKey]
        : entry?.publicKey
          ? // During a key rotation either key's signature is the cache's.
            [entry.publicKey, ...(entry.retiredSigningKeys ?? []).map((text) => formatPublicKey(publicKeyOf(parseSigningKey(text))))]
          : (await opened.cache.info()).publicKeys;
    if (keyTexts.length === 0) {
      throw new UserError(
        `no public key is known for ${opened.name}`,
        `pass the key that signs it: cachix verify ${cacheName} --public-key NAME-1:... PATHS`,
      );
    }
    const keys = keyTexts.map((text) => parsePublicKeyFrom(text, options.publicKey ? '--public-key' : `the key of ${opened.name}`));
    const targets = await listing;
    prepareVerify(targets.map(([, local]) => local?.narSize));
    const absent = await absentListings(
      opened.cache,
      targets.map(([storePath]) => hashPartOf(storePath)),
    );
    // What push leaves out on purpose is not a failure: Nix gets it from the upstream cache.
    const upstreamKeys = upstreamKeyNames(entry, options);
    let failures = 0;
    let upstream = 0;
    // Checked several at once, printed in order as soon as every line before is known.
    const lines: Array<string | undefined> = new Array(targets.length);
    let printed = 0;
    await forEachConcurrently(
      verifyOrder(
        targets.map((target, index) => ({ target, index })),
        ({ target: [, local] }) => local?.narSize,
      ),
      VERIFY_CONCURRENCY,
      async ({ target: [storePath, local], index }) => {
        const checks = { fileHash: options.fileHash === true, absentListings: absent };
        const verdict = await verifyPath(opened.cache, storePath, keys, local, checks);
        const upstreamKey = verdict.absent && local ? upstreamKeyOf(local, upstreamKeys) : undefined;
        if (upstreamKey !== undefined) upstream += 1;
        else if (verdict.problems.length > 0) failures += 1;
        const status =
          upstreamKey !== undefined
            ? `served upstream (signed by ${upstreamKey}, not in ${opened.name})`
            : verdict.problems.length === 0
              ? 'ok'
              : `FAIL: ${verdict.problems.join('; ')}`;
        // Problems quote what the server sent: no control characters (terminal escapes) reach the terminal.
        lines[index] = printable(`${storePath} ${status}${verdict.notes.length ? ` (${verdict.notes.join('; ')})` : ''}`);
        while (printed < lines.length && lines[printed] !== undefined) context.stdout.write(`${lines[printed++]}\n`);
      },
    );
    const servedUpstream = upstream > 0 ? ` (${upstream} of them served upstream)` : '';
    if (failures > 0)
      context.stderr.write(`${failures} of ${targets.length} paths failed verification in ${opened.name}${servedUpstream}\n`);
    else if (targets.length > 1) context.stderr.write(`all ${targets.length} paths verified in ${opened.name}${servedUpstream}\n`);
    return failures > 0 ? 1 : 0;
  } finally {
    await opened.cache.close?.();
  }
}
