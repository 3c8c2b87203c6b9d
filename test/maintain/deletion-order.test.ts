import { describe, expect, it } from 'vitest';
import { deletionWaves, type ReferenceGraph } from '../../src/maintain/deletion-order.js';

/** Waves of `doomed` (letters) in the graph of "a->b" edges (a refers to b), as letters. */
function waves(doomed: string[], edges: string[]): string[][] {
  const letters = [...new Set([...doomed, ...edges.flatMap((edge) => edge.split('->'))])].sort();
  const row = (letter: string): number => letters.indexOf(letter);
  const references = letters.map(() => [] as number[]);
  const referrers = letters.map(() => [] as number[]);
  for (const edge of edges) {
    const [from, to] = edge.split('->').map(row) as [number, number];
    references[from]!.push(to);
    if (from !== to) referrers[to]!.push(from);
  }
  const graph: ReferenceGraph = {
    count: letters.length,
    references: (r) => references[r]!,
    referrers: (r) => referrers[r]!,
    name: (r) => letters[r]!,
  };
  return deletionWaves(doomed.map(row), graph).map((wave) => wave.map((r) => letters[r]!));
}

describe('deletionWaves', () => {
  it('puts every referrer in a wave before its references', () => {
    expect(waves(['a', 'b', 'c', 'd'], ['a->b', 'b->c', 'a->c', 'd->c'])).toEqual([['a', 'd'], ['b'], ['c']]);
  });

  it('ignores self-references, which Nix allows', () => {
    expect(waves(['a'], ['a->a'])).toEqual([['a']]);
  });

  it('refuses a plan that would leave a remaining path dangling', () => {
    expect(() => waves(['b'], ['a->b'])).toThrow('b is still referred to by a, which stays');
  });

  it('refuses a cycle rather than deleting in some order that breaks it', () => {
    expect(() => waves(['a', 'b'], ['a->b', 'b->a'])).toThrow('cycle');
  });
});
