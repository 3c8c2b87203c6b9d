import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachixEnv, expectOk, type CachixEnv } from '../helpers/cachix-env.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { buildWithNix, run } from '../helpers/nix.js';
import { runMeasuringMemory } from '../helpers/peak-rss.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';

/** More than the 300 MiB bound below: a push that held the NAR whole would pass it. */
const NAR_BYTES = 320 * 1024 * 1024;

describe('a 320 MiB NAR to s3rver in bounded memory (more than the bound: holding it whole would fail)', () => {
  let world: CachixEnv;
  let s3: RunningS3rver;
  let bigPath: string;

  beforeAll(async () => {
    world = await makeCachixEnv();
    s3 = await startS3rver();
    Object.assign(world.env, s3.env);
    // Mostly incompressible, so the compressed NAR is about as large as the NAR itself.
    bigPath = await buildWithNix('s3-large', `head -c ${NAR_BYTES} /dev/urandom > $out`);
    expectOk(await world.run(['create', 'big', '--url', s3.s3Url]), 'create');
  }, 600_000);
  afterAll(async () => {
    await s3.stop();
    await world.cleanup();
    await run('nix-store', ['--delete', bigPath]).catch(() => undefined);
  });

  it('peak resident memory stays under 300 MB', async () => {
    const measured = await runMeasuringMemory(process.execPath, [CACHIX_BIN, 'push', 'big', bigPath], {
      ...process.env,
      ...world.env,
      CI: 'true',
    });
    process.stdout.write(
      `320 MiB NAR to s3rver: ${(measured.wallMs / 1000).toFixed(1)} s, peak RSS ${measured.peakRssMiB.toFixed(0)} MiB\n`,
    );
    expect(measured.stderr).toMatch(/pushed 1 paths/);
    expect(measured.code).toBe(0);
    expect(measured.peakRssMiB).toBeGreaterThan(20); // the sampler saw the process at all
    expect(measured.peakRssMiB).toBeLessThan(300);
    const head = await fetch(`${s3.httpUrl}/${bigPath.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`);
    expect(head.status).toBe(200);
  }, 600_000);
});
