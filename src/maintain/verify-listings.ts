// Which of the verified paths have a `.ls` in the cache: a server that lists its root (HTTP with
// PROPFIND or a JSON index, S3) says so in one listing or a few pages, and verify then asks only
// for the listings that exist, instead of one GET per path that mostly answers 404.
import type { BinaryCache } from '../caches/cache.js';

/**
 * Hash parts whose `.ls` a listing of the cache showed absent: verify asks for every other one.
 * Empty when the server does not list, for too few paths to be worth a listing, or when the
 * listing fails: each `.ls` is then asked for, as before.
 */
export async function absentListings(cache: BinaryCache, hashParts: readonly string[]): Promise<ReadonlySet<string>> {
  if (!cache.listedAbsent) return new Set();
  try {
    return (await cache.listedAbsent(hashParts, '.ls')).absent;
  } catch {
    return new Set();
  }
}
