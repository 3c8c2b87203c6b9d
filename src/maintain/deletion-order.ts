// The order that keeps a cache consistent while paths leave it: a narinfo goes only once no
// remaining narinfo refers to it, so at every instant every remaining reference is present.

/**
 * `doomed` in waves: every path of a wave has no referrer left once the waves before it are
 * gone, so a wave may be deleted all at once. `referrers` covers the whole cache; a referrer
 * outside `doomed` is a caller's mistake (it would be left dangling) and throws.
 */
export function deletionWaves(doomed: ReadonlySet<string>, referrers: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const pending = new Map<string, number>();
  for (const hashPart of doomed) {
    let count = 0;
    for (const referrer of referrers.get(hashPart) ?? []) {
      if (referrer === hashPart) continue; // a path may refer to itself
      if (!doomed.has(referrer)) throw new Error(`${hashPart} is still referred to by ${referrer}, which stays`);
      count++;
    }
    pending.set(hashPart, count);
  }
  // References of each doomed path that are doomed too: they lose a referrer when it goes.
  const referencesOf = new Map<string, string[]>();
  for (const hashPart of doomed) {
    for (const referrer of referrers.get(hashPart) ?? []) {
      if (referrer === hashPart) continue;
      let list = referencesOf.get(referrer);
      if (!list) referencesOf.set(referrer, (list = []));
      list.push(hashPart);
    }
  }
  const waves: string[][] = [];
  let wave = [...pending].filter(([, count]) => count === 0).map(([hashPart]) => hashPart);
  let placed = 0;
  while (wave.length > 0) {
    wave.sort();
    waves.push(wave);
    placed += wave.length;
    const next: string[] = [];
    for (const hashPart of wave) {
      for (const reference of referencesOf.get(hashPart) ?? []) {
        const left = pending.get(reference)! - 1;
        pending.set(reference, left);
        if (left === 0) next.push(reference);
      }
    }
    wave = next;
  }
  // Nix store paths cannot refer to each other in a cycle (only to themselves, excluded above).
  if (placed !== doomed.size) throw new Error('the references of the paths to delete form a cycle');
  return waves;
}
