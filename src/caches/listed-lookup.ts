// narinfo lookups (or of any `<hash part><suffix>` file in the root, such as a path's `.ls`)
// answered by listing the bucket instead of one request per path. A listing page
// names up to a thousand keys in order, so one request can answer every lookup whose narinfo
// would fall inside it: for a push whose closure is a good part of the cache (the no-op re-push CI
// does most), tens of requests instead of thousands. Pages start at the next unanswered hash
// (StartAfter), so lookups spread thinly over a big cache would get one page each: a page that
// answers too few gives its range back to the caller's HEADs. A path counts as present only when
// its narinfo is listed; anything the listing did not cover is left undecided, never guessed.

/** One page of names directly under the cache's prefix, in the server's order, folders included. */
export interface ListingPage {
  names: string[];
  /** More names follow the last one. */
  truncated: boolean;
}

/** The page of names after `startAfter` (itself excluded), at most `maxKeys` of them. */
export type ListPage = (startAfter: string, maxKeys: number) => Promise<ListingPage>;

export interface ListedLookup {
  missing: Set<string>;
  /** Hash parts no page covered: ask them one by one. */
  undecided: string[];
}

export const PAGE_KEYS = 1000;
/** A page that answers fewer lookups than this costs more than the HEADs it saves. */
const MIN_ANSWERED_PER_PAGE = 16;
/** Ranges of the sorted lookups listed at once, each page after page. */
const STREAMS = 4;

export async function lookupByListing(hashParts: readonly string[], listPage: ListPage, suffix = '.narinfo'): Promise<ListedLookup> {
  const sorted = [...new Set(hashParts)].sort();
  const missing = new Set<string>();
  const undecided: string[] = [];
  const streamLength = Math.ceil(sorted.length / STREAMS);
  const ranges: string[][] = [];
  for (let start = 0; start < sorted.length; start += streamLength) ranges.push(sorted.slice(start, start + streamLength));
  await Promise.all(
    ranges.map(async (range) => {
      let next = 0;
      while (next < range.length) {
        const page = await listPage(range[next]!, PAGE_KEYS);
        const listed = new Set(page.names);
        // The page covers every name up to its last one, or everything when it is the last page.
        const lastName = page.names.reduce((last, name) => (name > last ? name : last), '');
        const covers = (hashPart: string): boolean => !page.truncated || `${hashPart}${suffix}` <= lastName;
        const first = next;
        while (next < range.length && covers(range[next]!)) {
          if (!listed.has(`${range[next]!}${suffix}`)) missing.add(range[next]!);
          next++;
        }
        if (next - first < MIN_ANSWERED_PER_PAGE && next < range.length) {
          undecided.push(...range.slice(next));
          return;
        }
      }
    }),
  );
  return { missing, undecided };
}
