import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCache, makeLocalCache } from '../helpers/cachix-env.js';
import { requireNix } from '../helpers/nix.js';
import { buildSideBySide } from '../helpers/side-by-side.js';
import { hasNarinfo } from '../helpers/cache-files.js';

describe('watch-exec --watch-mode store', () => {
  let local: LocalCache;

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('watched');
  });
  afterAll(() => local.cleanup());

  it('store mode, unlike the post-build-hook, also pushes what another process built beside it', async () => {
    const { own, skipped, others } = await buildSideBySide(local, 'watched', 'store');
    for (const path of own) expect(hasNarinfo(local.cacheDir, path), path).toBe(true);
    expect(hasNarinfo(local.cacheDir, skipped)).toBe(false);
    expect(others.some((path) => hasNarinfo(local.cacheDir, path))).toBe(true);
  });
});
