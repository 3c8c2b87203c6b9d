/**
 * Test files that watch /nix/store for new valid paths (watch-store, watch-exec in store mode, the
 * daemon, the watcher itself). Anything another test builds while one of them runs is seen, and
 * pushed or counted, by it, so these files run one at a time with nothing beside them; every other
 * file may run in parallel. vitest.config.ts and `npm run mutate` both schedule by this list.
 */
export const STORE_WATCH_TEST_FILES = [
  'test/store/watch.test.ts',
  'test/commands/watch-store.test.ts',
  'test/commands/watch-exec.test.ts',
  'test/commands/watch-exec-hook.test.ts',
  'test/commands/daemon.test.ts',
] as const;

export function usesStoreWatcher(testFile: string): boolean {
  return (STORE_WATCH_TEST_FILES as readonly string[]).includes(testFile);
}
