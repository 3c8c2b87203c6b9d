// The order that keeps a cache consistent while paths leave it: a narinfo goes only once no
// remaining narinfo refers to it, so at every instant every remaining reference is present.

/** The paths as rows (0 … count-1), each with its references and its referrers. */
export interface ReferenceGraph {
  count: number;
  /** Rows it refers to, each once (itself possibly among them). */
  references(row: number): ArrayLike<number>;
  /** Rows referring to it, each once, itself excluded. */
  referrers(row: number): ArrayLike<number>;
  /** How a row is named in an error, and the order within a wave. */
  name(row: number): string;
}

/**
 * `doomed` (rows) in waves: every path of a wave has no referrer left once the waves before it
 * are gone, so a wave may be deleted all at once; each wave sorted by name. The graph covers the
 * whole cache; a referrer outside `doomed` is a caller's mistake (it would be left dangling) and
 * throws.
 */
export function deletionWaves(doomed: readonly number[], graph: ReferenceGraph): number[][] {
  const isDoomed = new Uint8Array(graph.count);
  for (const row of doomed) isDoomed[row] = 1;
  const pending = new Uint32Array(graph.count);
  let wave: number[] = [];
  for (const row of doomed) {
    const referrers = graph.referrers(row);
    for (let i = 0; i < referrers.length; i++) {
      const referrer = referrers[i]!;
      if (isDoomed[referrer] !== 1) throw new Error(`${graph.name(row)} is still referred to by ${graph.name(referrer)}, which stays`);
    }
    pending[row] = referrers.length;
    if (referrers.length === 0) wave.push(row);
  }
  const waves: number[][] = [];
  let placed = 0;
  while (wave.length > 0) {
    const names = new Map(wave.map((row) => [row, graph.name(row)]));
    wave.sort((a, b) => (names.get(a)! < names.get(b)! ? -1 : 1));
    waves.push(wave);
    placed += wave.length;
    const next: number[] = [];
    // A doomed path's doomed references lose a referrer when it goes.
    for (const row of wave) {
      const references = graph.references(row);
      for (let i = 0; i < references.length; i++) {
        const reference = references[i]!;
        if (reference === row || isDoomed[reference] !== 1) continue;
        if (--pending[reference]! === 0) next.push(reference);
      }
    }
    wave = next;
  }
  // Nix store paths cannot refer to each other in a cycle (only to themselves, excluded above).
  if (placed !== doomed.length) throw new Error('the references of the paths to delete form a cycle');
  return waves;
}
