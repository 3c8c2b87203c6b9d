/**
 * Test files whose commands watch /nix/store for new valid paths and push or count what they see
 * (watch-store, watch-exec in store mode). Anything another test builds while one of them runs is
 * seen, and pushed or counted, by it, so these files run one at a time with nothing beside them;
 * every other file may run in parallel. Not among them: `test/store/watch.test.ts`, whose watchers
 * only look for the paths their own test built (and count batches far from any bound a few foreign
 * paths could reach), `test/commands/daemon.test.ts`: the daemon watches no store, it pushes
 * what its clients and its post-build-hook (set for the test's own builds only) hand it, and
 * `test/commands/watch-exec-hook.test.ts` and `watch-exec.test.ts`, whose watch-exec takes only
 * what Nix's post-build-hook hands it (asked for, or `auto` as root, whom Nix trusts).
 * vitest.config.ts and `npm run mutate` both schedule by this list.
 */
export const STORE_WATCH_TEST_FILES = ['test/commands/watch-store.test.ts', 'test/commands/watch-exec-store-mode.test.ts'] as const;

export function usesStoreWatcher(testFile: string): boolean {
  return (STORE_WATCH_TEST_FILES as readonly string[]).includes(testFile);
}
