import { defineConfig } from 'vitest/config';

// Tests start real Nix, nginx and s3rver, and share /nix/store, so files run one at a time:
// watch-store pushes whatever becomes valid in the store, so another file's build landing in the
// middle of a watch-store test would be pushed (and counted in its memory) too.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
