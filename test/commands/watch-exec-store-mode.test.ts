import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCache, makeLocalCache } from '../helpers/cachix-env.js';
import { requireNix, hashOf } from '../helpers/nix.js';
import { buildSideBySide } from '../helpers/side-by-side.js';

describe('watch-exec --watch-mode store', () => {
  let local: LocalCache;

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('watched');
  });
  afterAll(() => local.cleanup());

  const has = (path: string): boolean => existsSync(join(local.cacheDir, `${hashOf(path)}.narinfo`));

  it('store mode, unlike the post-build-hook, also pushes what another process built beside it', async () => {
    const { own, skipped, others } = await buildSideBySide(local, 'watched', 'store');
    for (const path of own) expect(has(path), path).toBe(true);
    expect(has(skipped)).toBe(false);
    expect(others.some((path) => has(path))).toBe(true);
  });
});
