// What `doctor` asks a cache's server: that it answers as a binary cache for our store, that the
// key we would sign with is the cache's, that we can write, and that a given path is there.
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import type { CacheInfo } from '../caches/cache.js';
import { cachixHost, openCache, type OpenedCache } from '../caches/open.js';
import { storeDirOf, type Context } from '../context.js';
import { UserError } from '../errors.js';
import { publicKeyBase64 } from '../nix/secret-key-formats.js';
import { findSigningKeyText, keyWithPublicHalf, parseFoundKey, signerWithoutKey } from '../push/signing-key.js';
import { cachixApiToken as apiToken } from '../caches/credentials.js';
import { checkClock, serverBaseUrl } from './clock.js';
import { finding, type CheckResult } from './report.js';

export interface CacheCheckOptions {
  readOnly: boolean;
  storePath?: string | undefined;
}

function failureOf(cache: string, check: string, error: unknown): CheckResult {
  if (error instanceof UserError) return finding(cache, check, 'fail', error.message, error.hint);
  return finding(cache, check, 'fail', error instanceof Error ? error.message : String(error));
}

/** A refusal of our credentials is named as such, never as an unreachable or empty server. */
function serverFailure(cache: string, error: unknown): CheckResult {
  const refused =
    error instanceof UserError && /refused our credentials|HTTP 40[13]\b|InvalidAccessKeyId|SignatureDoesNotMatch/.test(error.message);
  return failureOf(cache, refused ? 'token' : 'server', error);
}

function keyCheck(name: string, opened: OpenedCache, info: CacheInfo, context: Context): CheckResult {
  const env = context.env;
  const found = findSigningKeyText(opened, env);
  if (!found) {
    const hasToken = Boolean(apiToken(context, opened.config, cachixHost(context, opened.config), opened.entry));
    const signer = signerWithoutKey(opened, hasToken);
    if (signer === 'server') return finding(name, 'signing key', 'ok', 'the server signs what it is sent');
    if (signer === 'service') return finding(name, 'signing key', 'ok', 'none here: the cachix service signs pushes made with the token');
    return finding(
      name,
      'signing key',
      'warn',
      'no signing key: this machine can read the cache, but push will refuse',
      `set CACHIX_SIGNING_KEY to the cache's secret key, or put it in the config as signing_key under [caches.${name}]`,
    );
  }
  let publicHalf: string;
  try {
    publicHalf = publicKeyBase64(parseFoundKey(found));
  } catch (error) {
    return failureOf(name, 'signing key', error);
  }
  const known = [...info.publicKeys, opened.entry?.publicKey, opened.entry?.pinnedPublicKey].filter(
    (key): key is string => typeof key === 'string' && key.includes(':'),
  );
  if (known.length === 0) {
    return finding(
      name,
      'signing key',
      'warn',
      `the key from ${found.source} cannot be compared: no public key of the cache is known`,
      `add public_key under [caches.${name}]`,
    );
  }
  const match = keyWithPublicHalf(known, publicHalf);
  if (!match) {
    return finding(
      name,
      'signing key',
      'fail',
      `the signing key from ${found.source} is not the cache's: its public half is none of ${[...new Set(known)].join(', ')}`,
      'Nix would reject everything it signs; use the key `cachix create` made for this cache (or rotate the cache to the new key)',
    );
  }
  return finding(name, 'signing key', 'ok', `the key from ${found.source} is ${match.slice(0, match.indexOf(':'))}, the cache's`);
}

/** A canary under a temporary name, written and deleted: what a push needs, without a store path. */
async function writeCheck(name: string, opened: OpenedCache): Promise<CheckResult | undefined> {
  const { putFile, deleteFile } = opened.cache;
  if (!putFile || !deleteFile) return undefined;
  const canary = `.cachix-doctor-${randomBytes(6).toString('hex')}`;
  try {
    await putFile.call(opened.cache, canary, 'written by cachix doctor; safe to delete\n', 'text/plain');
  } catch (error) {
    const failed = failureOf(name, 'write', error);
    return {
      ...failed,
      message: `cannot write to the cache: ${failed.message}`,
      hint: failed.hint ?? 'check the permissions of the cache or the credentials that push uses',
    };
  }
  try {
    await deleteFile.call(opened.cache, canary);
  } catch (error) {
    return finding(
      name,
      'write',
      'warn',
      `wrote ${canary} but could not delete it: ${(error as Error).message}`,
      'delete it by hand; gc needs to delete too',
    );
  }
  return finding(name, 'write', 'ok', 'a test file was written and deleted');
}

async function pathCheck(name: string, opened: OpenedCache, storePath: string): Promise<CheckResult> {
  const hashPart = basename(storePath).slice(0, 32);
  const missing = await opened.cache.missing([hashPart]);
  return missing.has(hashPart)
    ? finding(name, 'store path', 'fail', `${storePath} is not in the cache`, `cachix push ${name} ${storePath}`)
    : finding(name, 'store path', 'ok', `${storePath} is in the cache`);
}

/** Every server-side check of one cache, in the order a push meets them; stops where the rest cannot run. */
export async function checkCacheServer(
  name: string,
  context: Context,
  options: CacheCheckOptions,
): Promise<{ results: CheckResult[]; info?: CacheInfo }> {
  let opened: OpenedCache;
  try {
    opened = await openCache(name, context);
  } catch (error) {
    return { results: [failureOf(name, 'config', error)] };
  }
  const results: CheckResult[] = [];
  try {
    const base = serverBaseUrl(opened.url, cachixHost(context, opened.config));
    let info: CacheInfo;
    try {
      info = await opened.cache.info();
    } catch (error) {
      results.push(serverFailure(name, error));
      const clock = base ? await checkClock(name, base) : undefined;
      if (clock) results.push(clock);
      return { results };
    }
    results.push(finding(name, 'server', 'ok', `${opened.cache.description} answers as a binary cache`));
    const storeDir = storeDirOf(context.env);
    results.push(
      info.storeDir === storeDir
        ? finding(name, 'store dir', 'ok', `StoreDir ${info.storeDir}`)
        : finding(
            name,
            'store dir',
            'fail',
            `the cache is for StoreDir ${info.storeDir}, this Nix uses ${storeDir}`,
            'Nix substitutes only from a cache of its own store dir: push to a cache made for it',
          ),
    );
    results.push(keyCheck(name, opened, info, context));
    if (options.readOnly) results.push(finding(name, 'write', 'ok', 'not checked (--read-only)'));
    else {
      const written = await writeCheck(name, opened);
      if (written) results.push(written);
    }
    if (options.storePath)
      results.push(await pathCheck(name, opened, options.storePath).catch((error: unknown) => failureOf(name, 'store path', error)));
    const clock = base ? await checkClock(name, base) : undefined;
    if (clock) results.push(clock);
    return { results, info };
  } finally {
    await opened.cache.close?.();
  }
}
