import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCache, makeLocalCache } from '../helpers/cachix-env.js';
import { requireNix } from '../helpers/nix.js';
import { buildSideBySide } from '../helpers/side-by-side.js';
import { hasNarinfo } from '../helpers/cache-files.js';

// The hook hands over only what the command builds, so this file needs no store of its own: it
// runs beside the others (the store mode, which watches the whole store, is
// watch-exec-store-mode.test.ts, run alone).
describe('watch-exec --watch-mode post-build-hook', () => {
  let local: LocalCache;

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('hooked');
  });
  afterAll(() => local.cleanup());

  it("pushes only the command's builds while another process builds beside it; --exclude holds", async () => {
    const { own, skipped, others, stderr } = await buildSideBySide(local, 'hooked', 'post-build-hook');
    expect(stderr).toMatch(/handed over by Nix's post-build-hook \(as asked\)/);
    for (const path of own) expect(hasNarinfo(local.cacheDir, path), path).toBe(true);
    expect(hasNarinfo(local.cacheDir, skipped)).toBe(false);
    for (const path of others) expect(hasNarinfo(local.cacheDir, path), path).toBe(false);
    expect(stderr).toMatch(/pushed 3 paths .*not pushed: 1 path .* matched --exclude/);
  });
});
