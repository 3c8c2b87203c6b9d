import { describe, expect, it } from 'vitest';
import { lookupByListing, PAGE_KEYS, type ListPage } from '../../src/caches/listed-lookup.js';
import { seededRandom } from '../helpers/seeded-random.js';

const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

function hashes(count: number, random: () => number): string[] {
  const made = new Set<string>();
  while (made.size < count) {
    let hash = '';
    for (let index = 0; index < 32; index++) hash += ALPHABET[Math.floor(random() * 32)];
    made.add(hash);
  }
  return [...made];
}

/**
 * ListObjectsV2 with Delimiter '/', as AWS documents it: names in byte order after StartAfter,
 * folders rolled up into one CommonPrefix each, MaxKeys counting both, IsTruncated when more
 * follow. s3rver answers 500 whenever a listing would be truncated, so truncation is checked here.
 */
function bucketListing(keys: string[]): { listPage: ListPage; pages: number[] } {
  const names = [...new Set(keys.map((key) => (key.includes('/') ? key.slice(0, key.indexOf('/') + 1) : key)))].sort();
  const pages: number[] = [];
  const listPage: ListPage = async (startAfter, maxKeys) => {
    const after = names.filter((name) => name > startAfter);
    pages.push(Math.min(after.length, maxKeys));
    return { names: after.slice(0, maxKeys), truncated: after.length > maxKeys };
  };
  return { listPage, pages };
}

function cacheKeys(present: string[]): string[] {
  return [
    ...present.map((hash) => `${hash}.narinfo`),
    'nix-cache-info',
    'nar/0a.nar.zst',
    'nar/zz.nar.zst',
    'log/x.drv',
    'realisations/y.doi',
  ];
}

describe('narinfo lookups answered by listing the bucket', () => {
  it('a no-op push of most of a cache: every lookup answered by a few pages, none guessed', async () => {
    const random = seededRandom(1);
    const all = hashes(12_000, random);
    const present = all.slice(0, 10_000);
    const asked = [...all.slice(0, 9_000), ...all.slice(10_000)]; // 9,000 present, 2,000 absent
    const { listPage, pages } = bucketListing(cacheKeys(present));
    const result = await lookupByListing(asked, listPage);
    expect(result.undecided).toEqual([]);
    expect([...result.missing].sort()).toEqual(all.slice(10_000).sort());
    expect(pages.length).toBeLessThanOrEqual(Math.ceil(10_006 / PAGE_KEYS) + 4);
  });

  it('a few lookups in a big cache: listing gives up after a page per range, and leaves them to HEADs', async () => {
    const random = seededRandom(2);
    const all = hashes(60_020, random);
    const present = all.slice(0, 60_000);
    const asked = [...all.slice(0, 40), ...all.slice(60_000)];
    const { listPage, pages } = bucketListing(cacheKeys(present));
    const result = await lookupByListing(asked, listPage);
    expect(pages.length).toBeLessThanOrEqual(4);
    // Whatever was decided was decided right; the rest is undecided, not missing.
    for (const hash of result.missing) expect(all.slice(60_000)).toContain(hash);
    expect(result.undecided.length + result.missing.size).toBeGreaterThan(0);
    const decidedPresent = asked.filter((hash) => !result.missing.has(hash) && !result.undecided.includes(hash));
    for (const hash of decidedPresent) expect(present).toContain(hash);
    expect(result.undecided.length).toBeGreaterThan(asked.length / 2);
  });

  it('never calls a path present that the bucket does not list: random caches and lookups against the truth', async () => {
    const random = seededRandom(3);
    // Up to 12,000 paths: each of the four ranges then spans several pages.
    for (let round = 0; round < 16; round++) {
      const all = hashes(200 + Math.floor(random() * 12_000), random);
      const present = all.filter(() => random() < 0.7);
      const asked = all.filter(() => random() < 0.8);
      const { listPage } = bucketListing(cacheKeys(present));
      const result = await lookupByListing(asked, listPage);
      const presentSet = new Set(present);
      const undecided = new Set(result.undecided);
      for (const hash of asked) {
        if (undecided.has(hash)) continue;
        expect(result.missing.has(hash), `round ${round}: ${hash}`).toBe(!presentSet.has(hash));
      }
    }
  });

  it('only a narinfo makes a path present: its .ls, a leftover or a NAR-like name beside it do not', async () => {
    const asked = hashes(200, seededRandom(6));
    const [withListing, withLeftover, withNarLikeName, withDebugName] = asked;
    const present = asked.slice(4, 150);
    const keys = [
      ...cacheKeys(present),
      `${withListing}.ls`,
      `${withLeftover}.narinfo.tmp-1234`,
      `${withNarLikeName}.nar.xz`,
      `${withDebugName}-debug.narinfo`,
    ];
    const { listPage } = bucketListing(keys);
    const result = await lookupByListing(asked, listPage);
    expect(result.undecided).toEqual([]);
    expect([...result.missing].sort()).toEqual([withListing, withLeftover, withNarLikeName, withDebugName, ...asked.slice(150)].sort());
  });

  it('an empty bucket: everything missing from one page per range', async () => {
    const asked = hashes(500, seededRandom(4));
    const { listPage, pages } = bucketListing([]);
    const result = await lookupByListing(asked, listPage);
    expect(result.missing.size).toBe(500);
    expect(result.undecided).toEqual([]);
    expect(pages.length).toBe(4);
  });

  it('a listing that fails fails the lookup, for the caller to ask by HEAD', async () => {
    const failing: ListPage = async () => {
      throw new Error('AccessDenied');
    };
    await expect(lookupByListing(hashes(100, seededRandom(5)), failing)).rejects.toThrow('AccessDenied');
  });
});
