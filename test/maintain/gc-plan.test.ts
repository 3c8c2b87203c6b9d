import { describe, expect, it } from 'vitest';
import { planGc } from '../../src/maintain/gc-plan.js';
import type { CacheInventory, StoredPath } from '../../src/maintain/inventory.js';
import type { Pin } from '../../src/maintain/pin-file.js';

const hour = 3_600_000;
const now = new Date('2026-11-26T12:00:00Z');
const hash = (letter: string): string => letter.repeat(32);
const storePath = (letter: string): string => `/nix/store/${hash(letter)}-${letter}`;

/** Paths by letter: [references, hours ago pushed, NAR url]. */
function inventory(spec: Record<string, [string[], number, string?]>, extraNars: Array<[string, number]> = []): CacheInventory {
  const paths = new Map<string, StoredPath>();
  const nars = new Map<string, { name: string; size: number; modified: Date }>();
  for (const [letter, [references, hoursAgo, url = `nar/${letter}.nar`]] of Object.entries(spec)) {
    const pushedAt = new Date(now.getTime() - hoursAgo * hour);
    paths.set(hash(letter), {
      hashPart: hash(letter),
      text: '',
      pushedAt,
      narInfoSize: 10,
      info: {
        storePath: storePath(letter),
        url,
        compression: 'none',
        narHash: { algorithm: 'sha256', digest: new Uint8Array(32) },
        narSize: 100,
        references: references.map(storePath),
        sigs: [],
      },
    });
    nars.set(url, { name: url, size: 90, modified: pushedAt });
  }
  for (const [name, hoursAgo] of extraNars) nars.set(name, { name, size: 5, modified: new Date(now.getTime() - hoursAgo * hour) });
  return { paths, nars, unreadable: [], otherFiles: [], listedAt: now };
}

const pin = (letter: string): Pin => ({ name: 'p', keep: { forever: true }, revisions: [{ storePath: storePath(letter), pinnedAt: now }] });
const doomed = (plan: { waves: string[][] }): string[] => plan.waves.flat().map((h) => h[0]!);

describe('planGc', () => {
  // c -> b -> a; e -> a; d alone
  const cache = () => inventory({ a: [[], 10], b: [['a'], 10], c: [['b'], 10], d: [[], 1], e: [['a'], 10] });

  it('keeps the closures of pins and of recent pushes; deletes the rest referrers first', () => {
    const plan = planGc(cache(), [pin('b')], { now, olderThanMs: 2 * hour, graceMs: hour });
    expect([...plan.live].map((h) => h[0]).sort()).toEqual(['a', 'b', 'd']);
    expect(plan.waves.map((wave) => wave.map((h) => h[0]))).toEqual([['c', 'e']]);
    expect(plan.narsOfDeleted).toEqual(['nar/c.nar', 'nar/e.nar']);
  });

  it('with --max-size keeps the newest closures that fit, skipping one that does not', () => {
    const sized = inventory({ a: [[], 30], b: [['a'], 20], c: [[], 10], d: [[], 5] });
    // Each path costs 100 bytes stored (NAR 90 + narinfo 10). Newest first: d, c, then b needs a too.
    expect(doomed(planGc(sized, [], { now, maxSizeBytes: 250, graceMs: hour })).sort()).toEqual(['a', 'b']);
    expect(doomed(planGc(sized, [], { now, maxSizeBytes: 400, graceMs: hour }))).toEqual([]);
  });

  it('with --max-size a newest path too big for the budget does not take the older ones with it', () => {
    const sized = inventory({ a: [[], 30], b: [[], 20], c: [[], 10], huge: [[], 1, 'nar/huge.nar'] });
    sized.nars.set('nar/huge.nar', { name: 'nar/huge.nar', size: 10_000, modified: now });
    expect(doomed(planGc(sized, [], { now, maxSizeBytes: 300, graceMs: hour }))).toEqual(['h']);
  });

  it('never deletes a NAR a kept path also names', () => {
    const shared = inventory({ a: [[], 10, 'nar/same.nar'], b: [[], 10, 'nar/same.nar'] });
    const plan = planGc(shared, [pin('a')], { now, olderThanMs: 0, graceMs: hour });
    expect(doomed(plan)).toEqual(['b']);
    expect(plan.narsOfDeleted).toEqual([]);
  });

  it('deletes unnamed NARs only once older than the grace period, and none while a narinfo is unreadable', () => {
    const withOrphans = inventory({ a: [[], 10] }, [
      ['nar/old.nar', 5],
      ['nar/fresh.nar', 0.1],
    ]);
    expect(planGc(withOrphans, [pin('a')], { now, olderThanMs: 0, graceMs: hour }).orphanNars).toEqual(['nar/old.nar']);
    withOrphans.unreadable.push({ name: `${hash('z')}.narinfo`, problem: 'bad' });
    expect(planGc(withOrphans, [pin('a')], { now, olderThanMs: 0, graceMs: hour }).orphanNars).toEqual([]);
  });

  it('reports pins whose path the cache lacks', () => {
    expect(planGc(cache(), [pin('q')], { now, olderThanMs: 0, graceMs: hour }).pinGaps).toEqual([{ pin: 'p', missing: storePath('q') }]);
  });

  it('reports a gap in the middle of a pinned closure, naming the path that refers to it', () => {
    // c -> b -> a with b's narinfo gone: what lies below b cannot be known.
    const gapped = inventory({ a: [[], 10], c: [['b'], 10] });
    expect(planGc(gapped, [pin('c')], { now, olderThanMs: 0, graceMs: hour }).pinGaps).toEqual([
      { pin: 'p', missing: storePath('b'), referrer: storePath('c') },
    ]);
    expect(planGc(cache(), [pin('c')], { now, olderThanMs: 0, graceMs: hour }).pinGaps).toEqual([]);
  });
});
