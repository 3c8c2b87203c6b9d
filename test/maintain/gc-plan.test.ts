import { describe, expect, it } from 'vitest';
import { planGc } from '../../src/maintain/gc-plan.js';
import type { CacheInventory } from '../../src/maintain/inventory.js';
import { NarTable } from '../../src/maintain/nar-table.js';
import { PathTable } from '../../src/maintain/path-table.js';
import type { Pin } from '../../src/maintain/pin-file.js';
import { seededRandom } from '../helpers/seeded-random.js';

const hour = 3_600_000;
const now = new Date('2026-11-26T12:00:00Z');
const hash = (letter: string): string => letter.repeat(32);
const storePath = (letter: string): string => `/nix/store/${hash(letter)}-${letter}`;

/** Paths by letter: [references, hours ago pushed, NAR url]. */
function inventory(spec: Record<string, [string[], number, string?]>, extraNars: Array<[string, number]> = []): CacheInventory {
  const paths = new PathTable();
  const nars = new NarTable();
  for (const [letter, [references, hoursAgo, url = `nar/${letter}.nar`]] of Object.entries(spec)) {
    const pushedAt = now.getTime() - hoursAgo * hour;
    const narIndex = nars.add({ name: url, size: 90, modified: new Date(pushedAt) });
    paths.setPresent(paths.row(hash(letter)), {
      pushedAt,
      narInfoSize: 10,
      narIndex,
      keepDeriver: false,
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
  }
  for (const [name, hoursAgo] of extraNars) nars.add({ name, size: 5, modified: new Date(now.getTime() - hoursAgo * hour) });
  return { paths, nars, unreadable: [], otherFiles: [], otherBytes: 0, listings: new Set(), listedAt: now };
}

/** The first letters of the paths that stay. */
const live = (plan: { live: Uint8Array }, of: CacheInventory): string[] =>
  [...of.paths.rows()].filter((row) => plan.live[row] === 1).map((row) => of.paths.hashPart(row)[0]!);
const pin = (letter: string): Pin => ({ name: 'p', keep: { forever: true }, revisions: [{ storePath: storePath(letter), pinnedAt: now }] });
const doomed = (plan: { waves: string[][] }): string[] => plan.waves.flat().map((h) => h[0]!);

describe('planGc', () => {
  // c -> b -> a; e -> a; d alone
  const cache = () => inventory({ a: [[], 10], b: [['a'], 10], c: [['b'], 10], d: [[], 1], e: [['a'], 10] });

  it('keeps the closures of pins and of recent pushes; deletes the rest referrers first', () => {
    const inv = cache();
    const plan = planGc(inv, [pin('b')], { now, olderThanMs: 2 * hour, graceMs: hour });
    expect(live(plan, inv).sort()).toEqual(['a', 'b', 'd']);
    expect(plan.liveCount).toBe(3);
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
    sized.nars.add({ name: 'nar/huge.nar', size: 10_000, modified: now });
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

/** A made-up cache as plain records: what the planner below reads, and what `tableOf` puts in columns. */
interface SpecPath {
  hashPart: string;
  name: string;
  references: string[];
  pushedAt: number;
  url: string;
  fileSize: number;
}

/** The planner as it was written over Maps and Sets of hash parts, one narinfo object a path: the behaviour the columns must keep. */
function plainPlan(
  spec: SpecPath[],
  nars: Map<string, { size: number; modified: number }>,
  pins: Pin[],
  policy: { olderThanMs?: number; maxSizeBytes?: number; unreadable: boolean },
) {
  const paths = new Map(spec.map((path) => [path.hashPart, path]));
  const hashOf = (storePath: string): string => storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  const closure = (roots: string[]): Set<string> => {
    const found = new Set<string>();
    const stack = roots.filter((root) => paths.has(root));
    while (stack.length > 0) {
      const hashPart = stack.pop()!;
      if (found.has(hashPart)) continue;
      found.add(hashPart);
      for (const reference of paths.get(hashPart)!.references) if (!found.has(reference) && paths.has(reference)) stack.push(reference);
    }
    return found;
  };
  const stored = (hashPart: string): number => {
    const path = paths.get(hashPart)!;
    return (nars.get(path.url)?.size ?? path.fileSize) + 10;
  };
  const roots = pins.flatMap((p) => p.revisions.map((revision) => hashOf(revision.storePath)));
  if (policy.olderThanMs !== undefined)
    for (const path of spec) if (path.pushedAt > now.getTime() - policy.olderThanMs) roots.push(path.hashPart);
  const live = closure(roots);
  let keptBytes = [...live].reduce((sum, hashPart) => sum + stored(hashPart), 0);
  if (policy.maxSizeBytes !== undefined) {
    for (const candidate of [...spec].filter((path) => !live.has(path.hashPart)).sort((a, b) => b.pushedAt - a.pushedAt)) {
      if (live.has(candidate.hashPart)) continue;
      const added = [...closure([candidate.hashPart])].filter((hashPart) => !live.has(hashPart));
      const addedBytes = added.reduce((sum, hashPart) => sum + stored(hashPart), 0);
      if (keptBytes + addedBytes > policy.maxSizeBytes) continue;
      for (const hashPart of added) live.add(hashPart);
      keptBytes += addedBytes;
    }
  }
  const doomed = spec.map((path) => path.hashPart).filter((hashPart) => !live.has(hashPart));
  const pending = new Map(
    doomed.map((hashPart) => [hashPart, spec.filter((path) => path.hashPart !== hashPart && path.references.includes(hashPart)).length]),
  );
  const waves: string[][] = [];
  let wave = doomed.filter((hashPart) => pending.get(hashPart) === 0);
  while (wave.length > 0) {
    waves.push(wave.sort());
    const next: string[] = [];
    for (const hashPart of wave)
      for (const reference of paths.get(hashPart)!.references) {
        if (reference === hashPart || !pending.has(reference)) continue;
        pending.set(reference, pending.get(reference)! - 1);
        if (pending.get(reference) === 0) next.push(reference);
      }
    wave = next;
  }
  let freedBytes = doomed.reduce((sum, hashPart) => sum + stored(hashPart), 0);
  const namedByLive = new Set([...live].map((hashPart) => paths.get(hashPart)!.url));
  const namedByAny = new Set(spec.map((path) => path.url));
  const narsOfDeleted = [...new Set(doomed.map((hashPart) => paths.get(hashPart)!.url))]
    .filter((url) => !namedByLive.has(url) && nars.has(url))
    .sort();
  const orphanNars: string[] = [];
  if (!policy.unreadable)
    for (const [name, nar] of nars) {
      if (namedByAny.has(name) || now.getTime() - nar.modified < hour) continue;
      orphanNars.push(name);
      freedBytes += nar.size;
    }
  const gaps = new Map<string, { pin: string; missing: string; referrer?: string }>();
  const nameOf = new Map(spec.map((path) => [path.hashPart, `/nix/store/${path.hashPart}-${path.name}`]));
  for (const path of spec)
    for (const reference of path.references) if (!nameOf.has(reference)) nameOf.set(reference, `/nix/store/${reference}-gone`);
  for (const pin of pins) {
    const pinRoots = pin.revisions.map((revision) => revision.storePath);
    for (const root of pinRoots) if (!paths.has(hashOf(root))) gaps.set(`${pin.name} ${root}`, { pin: pin.name, missing: root });
    for (const hashPart of closure(pinRoots.map(hashOf)))
      for (const reference of paths.get(hashPart)!.references)
        if (!paths.has(reference) && !gaps.has(`${pin.name} ${nameOf.get(reference)}`))
          gaps.set(`${pin.name} ${nameOf.get(reference)}`, {
            pin: pin.name,
            missing: nameOf.get(reference)!,
            referrer: nameOf.get(hashPart)!,
          });
  }
  return {
    live: [...live].sort(),
    waves,
    narsOfDeleted,
    orphanNars: orphanNars.sort(),
    pinGaps: [...gaps.values()],
    keptBytes,
    freedBytes,
  };
}

describe('planGc over columns', () => {
  it('plans exactly as the plain planner on made-up caches with pins, gaps, shared and unnamed NARs', () => {
    for (let seed = 1; seed <= 3; seed++) {
      const random = seededRandom(seed);
      const base32 = '0123456789abcdfghijklmnpqrsvwxyz';
      const hashPart = (): string => Array.from({ length: 32 }, () => base32[Math.floor(random() * 32)]).join('');
      const spec: SpecPath[] = [];
      const nars = new Map<string, { size: number; modified: number }>();
      const missing = Array.from({ length: 5 }, hashPart);
      for (let i = 0; i < 200; i++) {
        const references = new Set<string>();
        for (let r = Math.floor(random() * 4); r > 0 && i > 0; r--)
          references.add(spec[Math.max(0, i - 1 - Math.floor(random() * 30))]!.hashPart);
        if (random() < 0.02) references.add(missing[Math.floor(random() * missing.length)]!);
        // Some paths share a NAR; some NARs are not listed (their FileSize counts).
        const url = i > 0 && random() < 0.05 ? spec[i - 1]!.url : `nar/${i}.nar`;
        const pushedAt = now.getTime() - (i * 997 + 13) * 60_000 * (1 + random());
        const path: SpecPath = { hashPart: hashPart(), name: `p${i}`, references: [...references], pushedAt, url, fileSize: 50 + i };
        if (references.size > 0 && random() < 0.3) path.references.push(path.hashPart); // refers to itself, as Nix allows
        spec.push(path);
        if (random() < 0.97) nars.set(url, { size: 100 + Math.floor(random() * 1000), modified: pushedAt });
      }
      for (let i = 0; i < 8; i++) nars.set(`nar/orphan-${i}.nar`, { size: 7, modified: now.getTime() - (i % 2 === 0 ? 2 : 0.5) * hour });
      const pinOf = (name: string, storePath: string): Pin => ({
        name,
        keep: { forever: true },
        revisions: [{ storePath, pinnedAt: now }],
      });
      const storePathOf = (path: SpecPath): string => `/nix/store/${path.hashPart}-${path.name}`;
      const pins = [pinOf('a', storePathOf(spec[170]!)), pinOf('b', storePathOf(spec[90]!)), pinOf('c', `/nix/store/${missing[0]}-gone`)];

      const paths = new PathTable();
      const table = new NarTable();
      for (const [name, nar] of nars) table.add({ name, size: nar.size, modified: new Date(nar.modified) });
      for (const path of [...spec].reverse()) {
        paths.setPresent(paths.row(path.hashPart), {
          pushedAt: path.pushedAt,
          narInfoSize: 10,
          narIndex: table.indexOf(path.url),
          keepDeriver: false,
          info: {
            storePath: storePathOf(path),
            url: path.url,
            compression: 'none',
            fileSize: path.fileSize,
            narHash: { algorithm: 'sha256', digest: new Uint8Array(32) },
            narSize: 1,
            references: path.references.map(
              (reference) => `/nix/store/${reference}-${spec.find((p) => p.hashPart === reference)?.name ?? 'gone'}`,
            ),
            sigs: [],
          },
        });
      }
      for (const unreadable of [false, true]) {
        const inv: CacheInventory = {
          paths,
          nars: table,
          unreadable: unreadable ? [{ name: 'x.narinfo', problem: 'bad' }] : [],
          otherFiles: [],
          otherBytes: 0,
          listings: new Set(),
          listedAt: now,
        };
        for (const policy of [{ olderThanMs: 40 * hour }, { maxSizeBytes: 60_000 }, { olderThanMs: 20 * hour, maxSizeBytes: 30_000 }]) {
          const plan = planGc(inv, pins, { now, graceMs: hour, ...policy });
          const expected = plainPlan(spec, nars, pins, { ...policy, unreadable });
          const got = {
            live: [...paths.rows()]
              .filter((row) => plan.live[row] === 1)
              .map((row) => paths.hashPart(row))
              .sort(),
            waves: plan.waves,
            narsOfDeleted: plan.narsOfDeleted,
            orphanNars: plan.orphanNars,
            pinGaps: plan.pinGaps,
            keptBytes: plan.keptBytes,
            freedBytes: plan.freedBytes,
          };
          expect(got, `seed ${seed}, ${JSON.stringify(policy)}, unreadable ${unreadable}`).toEqual(expected);
          expect(plan.liveCount).toBe(expected.live.length);
          // Not vacuous: something stays, something goes, in more than one wave.
          expect(expected.live.length).toBeGreaterThan(0);
          expect(expected.waves.length).toBeGreaterThan(1);
        }
      }
    }
  });
});
