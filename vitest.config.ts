import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { STORE_WATCH_TEST_FILES } from './test/store-watch-files.js';

// Tests start real Nix, nginx and s3rver and share /nix/store. Files that watch the store for new
// valid paths would push (and count in their memory) whatever another file builds beside them, so
// they run last, one at a time, with nothing else running (project `store-watch`, group 1). Every
// other file has its own servers on its own ports, its own cache folders and its own TMPDIR where it
// needs one, so those run in parallel first (project `parallel`, group 0). Most of a test's time is
// spent waiting on Nix, servers and the CLI, so two files run at once even on a 2-core machine.
const WORKERS = Math.max(2, availableParallelism());

export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: WORKERS,
    minWorkers: 1,
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: [...STORE_WATCH_TEST_FILES],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'store-watch',
          include: [...STORE_WATCH_TEST_FILES],
          sequence: { groupOrder: 1 },
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
