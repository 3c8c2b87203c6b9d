// Listing an HTTP cache's folders: WebDAV PROPFIND (Depth 1), else nginx's JSON autoindex, the
// kind the server answered kept for the next listing. Every file with its size and date for
// info, pin, gc and delete; only the root's names for lookups (which narinfos, which `.ls`
// exist), and only while a listing costs less than asking for each file.
import type { Dispatcher } from 'undici';
import type { ListedAbsence, ListedFile } from './cache.js';
import { readBody } from './http-body.js';
import { LISTING_MIN_LOOKUPS, listRootNames, type ListingKind } from './http-listed-lookup.js';
import { cannotListError, MAX_LISTING_BYTES, parseAutoindexJson, parsePropfindListing, PROPFIND_BODY } from './http-listing.js';

/** One request to the cache, relative to its root; statuses outside `expect` are errors. */
export type SendRequest = (
  method: 'PROPFIND' | 'GET',
  relativeUrl: string,
  options: { expect: number[]; headers: Record<string, string>; body?: string | undefined },
) => Promise<Dispatcher.ResponseData>;

export class HttpLister {
  /** Which listing the server answered first; asked once per cache. */
  private kind: ListingKind | undefined;
  /** The server refused to list its root for lookups: each file is asked for from then on, in this process. */
  private rootRefused = false;

  constructor(
    private readonly send: SendRequest,
    private readonly base: URL,
    private readonly description: string,
  ) {}

  /** The files directly in `folder`; a server with neither listing says so. */
  async list(folder: string): Promise<ListedFile[]> {
    const folderUrl = new URL(folder, this.base);
    if (this.kind !== 'autoindex') {
      const response = await this.send('PROPFIND', folder, {
        expect: [207, 400, 403, 404, 405, 501],
        headers: { depth: '1', 'content-type': 'application/xml; charset=utf-8' },
        body: PROPFIND_BODY,
      });
      if (response.statusCode === 207) {
        this.kind = 'propfind';
        return parsePropfindListing(
          await readBody(response.body, MAX_LISTING_BYTES, `the listing of ${folderUrl.href}`),
          folderUrl,
          folder,
        );
      }
      await response.body.dump();
      if (this.kind === 'propfind') {
        if (response.statusCode === 404) return [];
        throw cannotListError(this.description, `PROPFIND ${folder || '/'} answered ${response.statusCode}`);
      }
    }
    const response = await this.send('GET', folder, { expect: [200, 403, 404, 405], headers: { accept: 'application/json' } });
    const type = String(response.headers['content-type'] ?? '');
    if (response.statusCode === 200 && type.includes('json')) {
      this.kind = 'autoindex';
      return parseAutoindexJson(await readBody(response.body, MAX_LISTING_BYTES, `the listing of ${folderUrl.href}`), folder);
    }
    await response.body.dump();
    // A folder nothing was written to yet; the root itself missing means no listing at all.
    if (response.statusCode === 404 && folder !== '') return [];
    throw cannotListError(
      this.description,
      `PROPFIND and GET ${folder || '/'} as JSON answered ${response.statusCode === 200 ? `200 with ${type || 'no content type'}` : response.statusCode}`,
    );
  }

  /**
   * From LISTING_MIN_LOOKUPS lookups on, one listing of the root: a file counts only when listed.
   * `entriesPerLookup` is how many root entries a lookup's share of the listing may be before
   * asking each file costs less (see http-listed-lookup.ts).
   */
  async absent(hashParts: readonly string[], suffix: string, entriesPerLookup: number): Promise<ListedAbsence> {
    const unique = [...new Set(hashParts)];
    const unanswered: ListedAbsence = { absent: new Set(), undecided: unique };
    if (unique.length < LISTING_MIN_LOOKUPS || this.rootRefused) return unanswered;
    // Anything wrong with the listing (an odd answer, a dropped connection) is asked file by file.
    const listing = await listRootNames(
      (method, headers, body, expect) => this.send(method, '', { expect, headers, body }),
      this.base,
      this.kind,
      unique.length * entriesPerLookup,
    ).catch(() => undefined);
    if (listing?.outcome === 'refused') this.rootRefused = true;
    if (listing?.outcome !== 'listed') return unanswered;
    this.kind = listing.kind;
    return { absent: new Set(unique.filter((hashPart) => !listing.names.has(`${hashPart}${suffix}`))), undecided: [] };
  }
}
