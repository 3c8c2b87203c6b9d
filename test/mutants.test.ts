import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MUTANTS } from '../mutate/mutants.js';

// A mutant whose code moved on no longer breaks anything: `npm run mutate` would call it invalid,
// but only when someone runs it. This keeps every mutant applicable, and its killers in place.
describe('npm run mutate: every mutant still applies', () => {
  it.each(MUTANTS.map((mutant) => [mutant.id, mutant] as const))('%s', (_id, mutant) => {
    const source = readFileSync(mutant.file, 'utf8');
    expect(source.split(mutant.find).length - 1, `${mutant.file} must hold its find text exactly once`).toBe(1);
    for (const killer of mutant.killedBy) {
      const test = readFileSync(killer.file, 'utf8');
      if (killer.name) expect(test, `${killer.file} has no test named like "${killer.name}"`).toContain(killer.name);
    }
  });
});
