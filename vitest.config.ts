import { defineConfig } from 'vitest/config';

// Tests start real Nix, nginx and s3rver, and share /nix/store, so files run one at a time:
// watch-store pushes whatever becomes valid in the store, and a 1 GiB build from another file
// landing in the middle of its memory test once took its RSS from 69 to 173 MiB (a big NAR's
// zstd buffers, not a leak). Serial, the suite takes about 155 s instead of 105 s.
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
