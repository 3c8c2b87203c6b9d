import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { buildWithNix, run } from '../helpers/nix.js';
import { runMeasuringMemory } from '../helpers/peak-rss.js';

/** More than the 300 MiB bound below: a push that held the NAR whole would pass it. */
const NAR_BYTES = 320 * 1024 * 1024;
const TOKEN = 'attic-large-token-0123456789';

describe('a 320 MiB NAR to attic in bounded memory (more than the bound: holding it whole would fail)', () => {
  let world: CachixEnv;
  let attic: AtticDouble;
  let bigPath: string;

  beforeAll(async () => {
    world = await makeCachixEnv();
    // The double checks the NAR's hash and size and compresses it, but keeps none of it on disk.
    attic = await startAtticDouble({
      caches: [{ name: 'big', isPublic: false }],
      tokens: { [TOKEN]: { pull: true, push: true } },
      keepNars: false,
    });
    bigPath = await buildWithNix('attic-large', `head -c ${NAR_BYTES} /dev/urandom > $out`);
  }, 600_000);
  afterAll(async () => {
    await attic?.stop();
    await world?.cleanup();
    if (bigPath) await run('nix-store', ['--delete', bigPath]).catch(() => undefined);
  });

  it('streams the uncompressed NAR with peak resident memory under 300 MB', async () => {
    const measured = await runMeasuringMemory(process.execPath, [CACHIX_BIN, 'push', attic.cacheUrl('big'), bigPath], {
      ...process.env,
      ...world.env,
      CACHIX_AUTH_TOKEN: TOKEN,
      CI: 'true',
    });
    process.stdout.write(
      `320 MiB NAR to the attic double: ${(measured.wallMs / 1000).toFixed(1)} s, peak RSS ${measured.peakRssMiB.toFixed(0)} MiB\n`,
    );
    expect(measured.code, measured.stderr).toBe(0);
    expect(measured.stderr).toMatch(/pushed 1 paths/);
    expect(measured.peakRssMiB).toBeGreaterThan(20); // the sampler saw the process at all
    expect(measured.peakRssMiB).toBeLessThan(300);
    const hashPart = bigPath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    expect(attic.uploads.filter((upload) => upload.storePathHash === hashPart).map((upload) => upload.status)).toEqual([200]);
  }, 600_000);
});
