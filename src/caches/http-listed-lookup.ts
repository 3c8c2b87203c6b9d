// narinfo lookups answered by one listing of an HTTP cache's root (WebDAV PROPFIND Depth 1, or
// nginx's JSON autoindex) instead of one HEAD per path, as listed-lookup.ts does for S3. Measured
// against nginx on loopback: ~10,000 pipelined HEADs and one listing of a 10,001-file root both
// cost ~0.2-0.3 s of the server, and a HEAD costs about what two or three listed entries do. So
// a listing is asked only from LISTING_MIN_LOOKUPS lookups on, and read only while it stays under
// about two entries per lookup (a root mostly of other paths is cheaper asked by HEAD); a server
// that refuses to list, or answers with something that is not a listing, gets HEADs.
import type { Dispatcher } from 'undici';
import { readLimited } from '../util/read-limited.js';
import { parseAutoindexJson, propfindFileNames, PROPFIND_BODY } from './http-listing.js';

/** Below this, HEADs cost a few milliseconds: no listing of any cache beats them by much. */
export const LISTING_MIN_LOOKUPS = 256;
/** A listed file costs ~320 bytes of PROPFIND XML, ~125 of autoindex JSON. */
const BYTES_PER_ENTRY = { propfind: 320, autoindex: 128 } as const;
/** A HEAD costs about what two or three listed entries do: a narinfo lookup's share of a listing. */
export const NARINFO_ENTRIES_PER_LOOKUP = 2;

export type ListingKind = keyof typeof BYTES_PER_ENTRY;

export type RootListing =
  | { outcome: 'listed'; kind: ListingKind; names: Set<string> }
  /** The server does not list (405, 403, 501, or an answer that is not a listing): never ask again. */
  | { outcome: 'refused' }
  /** Longer than the lookups are worth: HEADs this time, a listing maybe for a larger push. */
  | { outcome: 'too large' };

export type SendListing = (
  method: 'PROPFIND' | 'GET',
  headers: Record<string, string>,
  body: string | undefined,
  expect: number[],
) => Promise<Dispatcher.ResponseData>;

class ListingTooLarge extends Error {}

async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<string | undefined> {
  try {
    return await readLimited(body, limit, () => new ListingTooLarge());
  } catch (error) {
    if (error instanceof ListingTooLarge) return undefined;
    throw error;
  }
}

/**
 * The names in the cache root, read with the listing the server answered before (if any); 'too
 * large' once it holds more than about `maxEntries`.
 */
export async function listRootNames(
  send: SendListing,
  base: URL,
  known: ListingKind | undefined,
  maxEntries: number,
): Promise<RootListing> {
  if (known !== 'autoindex') {
    const response = await send(
      'PROPFIND',
      { depth: '1', 'content-type': 'application/xml; charset=utf-8' },
      PROPFIND_BODY,
      [207, 400, 401, 403, 404, 405, 501],
    );
    if (response.statusCode === 207) {
      const xml = await readCapped(response.body, maxEntries * BYTES_PER_ENTRY.propfind);
      if (xml === undefined) return { outcome: 'too large' };
      try {
        return { outcome: 'listed', kind: 'propfind', names: new Set(propfindFileNames(xml, base)) };
      } catch {
        return { outcome: 'refused' };
      }
    }
    await response.body.dump();
    if (known === 'propfind') return { outcome: 'refused' };
  }
  const response = await send('GET', { accept: 'application/json' }, undefined, [200, 401, 403, 404, 405]);
  if (response.statusCode !== 200 || !String(response.headers['content-type'] ?? '').includes('json')) {
    await response.body.dump();
    return { outcome: 'refused' };
  }
  const text = await readCapped(response.body, maxEntries * BYTES_PER_ENTRY.autoindex);
  if (text === undefined) return { outcome: 'too large' };
  try {
    return { outcome: 'listed', kind: 'autoindex', names: new Set(parseAutoindexJson(text, '').map((file) => file.name)) };
  } catch {
    return { outcome: 'refused' };
  }
}
