// The guarantees we promise users, each broken on purpose in one place, with the tests that must
// then fail. `find` must occur exactly once in `file` (the runner refuses a stale mutant).
// Keep `killedBy` narrow (a file and a test name): every entry is a vitest run with real servers.

export interface Mutant {
  id: string;
  file: string;
  /** What a user would lose if this mutant shipped. */
  breaks: string;
  find: string;
  replace: string;
  /** Tried in order; the first failing run kills the mutant. */
  killedBy: { file: string; name?: string }[];
}

export const MUTANTS: Mutant[] = [
  // NarHash: the seed's "nix verifies the integrity of paths before pushing them".
  {
    id: 'push-narhash-check',
    file: 'src/push/nar-upload.ts',
    breaks: 'a store path changed after it was built (same size) is pushed as if it were intact',
    find: 'if (!hashesEqual(narHash, info.narHash)) {',
    replace: 'if (false) {',
    killedBy: [{ file: 'test/commands/push.test.ts', name: 'same-size tampered' }],
  },
];
