/**
 * Test files whose commands watch /nix/store for new valid paths and push or count what they see
 * (watch-store, watch-exec in store mode, the daemon). Anything another test builds while one of
 * them runs is seen, and pushed or counted, by it, so these files run one at a time with nothing
 * beside them; every other file may run in parallel. `test/store/watch.test.ts` is not one of them:
 * its watchers only look for the paths their own test built (and count batches far from any bound
 * a few foreign paths could reach). vitest.config.ts and `npm run mutate` both schedule by this list.
 */
export const STORE_WATCH_TEST_FILES = [
  'test/commands/watch-store.test.ts',
  'test/commands/watch-exec.test.ts',
  'test/commands/watch-exec-hook.test.ts',
  'test/commands/daemon.test.ts',
] as const;

export function usesStoreWatcher(testFile: string): boolean {
  return (STORE_WATCH_TEST_FILES as readonly string[]).includes(testFile);
}
