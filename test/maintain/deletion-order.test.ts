import { describe, expect, it } from 'vitest';
import { deletionWaves } from '../../src/maintain/deletion-order.js';

/** referrers map from "a->b" edges (a refers to b). */
function referrers(edges: string[]): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const edge of edges) {
    const [from, to] = edge.split('->') as [string, string];
    if (!map.has(to)) map.set(to, new Set());
    map.get(to)!.add(from);
  }
  return map;
}

describe('deletionWaves', () => {
  it('puts every referrer in a wave before its references', () => {
    const waves = deletionWaves(new Set(['a', 'b', 'c', 'd']), referrers(['a->b', 'b->c', 'a->c', 'd->c']));
    expect(waves).toEqual([['a', 'd'], ['b'], ['c']]);
  });

  it('ignores self-references, which Nix allows', () => {
    expect(deletionWaves(new Set(['a']), referrers(['a->a']))).toEqual([['a']]);
  });

  it('refuses a plan that would leave a remaining path dangling', () => {
    expect(() => deletionWaves(new Set(['b']), referrers(['a->b']))).toThrow('b is still referred to by a, which stays');
  });

  it('refuses a cycle rather than deleting in some order that breaks it', () => {
    expect(() => deletionWaves(new Set(['a', 'b']), referrers(['a->b', 'b->a']))).toThrow('cycle');
  });
});
