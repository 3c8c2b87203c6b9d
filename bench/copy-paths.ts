// `cachix copy` of many small paths from one file cache to another, against `nix copy --from
// file://A --to file://B` on the same input in the same run (issue 25: at most its time).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildManySmall } from './input.js';
import { measure, type Measured } from './measure.js';
import { seconds } from './report.js';
import {
  GOALS,
  LEVEL,
  NIX_FEATURES,
  SMALL_PATHS,
  SMALL_TIMEOUT_MS,
  cacheDir,
  cachixOk,
  check,
  log,
  nixCopySecretKey,
  ratioTarget,
  step,
  timings,
  workDir,
} from './harness.js';

export async function copySmallPaths(): Promise<void> {
  const many = await step(`build ${SMALL_PATHS} small paths and one referring to all (once per machine)`, () =>
    buildManySmall(SMALL_PATHS, 3600_000),
  );
  const key = many ? await nixCopySecretKey(' of the copied paths', 'bench-copy-1') : undefined;
  let ours: Measured | undefined;
  let theirs: Measured | undefined;
  if (
    many &&
    key &&
    (await step('create bench-copy-src and bench-copy-dst, push the small paths into bench-copy-src', async () => {
      await cachixOk(['create', 'bench-copy-src'], 60_000);
      await cachixOk(['create', 'bench-copy-dst'], 60_000);
      return cachixOk(['push', 'bench-copy-src', many.top, '-m', 'zstd', '-l', String(LEVEL)], SMALL_TIMEOUT_MS);
    }))
  ) {
    ours = await step(`cachix copy of ${SMALL_PATHS + 1} small paths, file -> file`, () =>
      cachixOk(['copy', 'bench-copy-src', 'bench-copy-dst'], SMALL_TIMEOUT_MS),
    );
    timings.push({
      name: `copy file -> file: cachix copy of ${SMALL_PATHS + 1} small paths`,
      wallMs: ours?.wallMs,
      peakRssBytes: ours?.peakRssBytes,
    });
    const target = join(workDir(), 'nix-copy-copied');
    const to = `file://${target}?compression=zstd&compression-level=${LEVEL}&secret-key=${key}`;
    theirs = await step(`nix copy --from file://A --to file://B of ${SMALL_PATHS + 1} small paths`, async () =>
      check(
        'nix copy',
        await measure('nix', [...NIX_FEATURES, 'copy', '--from', `file://${cacheDir('bench-copy-src')}`, '--to', to, many.top], {
          env: { ...process.env, XDG_CACHE_HOME: join(workDir(), 'nix-copy-copied-cache') },
          timeoutMs: SMALL_TIMEOUT_MS,
        }),
      ),
    );
    timings.push({
      name: 'copy file -> file: nix copy --from --to',
      wallMs: theirs?.wallMs,
      peakRssBytes: theirs?.peakRssBytes,
      note: 'the peer',
    });
    await rm(target, { recursive: true, force: true });
    if (ours && theirs) log(`   cachix copy ${seconds(ours.wallMs)}, nix copy ${seconds(theirs.wallMs)}`);
  }
  ratioTarget(
    `small paths, copy file -> file: ours / nix copy --from --to (ours ${seconds(ours?.wallMs)}, nix copy ${seconds(theirs?.wallMs)})`,
    ours && theirs ? ours.wallMs / theirs.wallMs : undefined,
    `≤ ${GOALS.copyVsNixCopy}×`,
    (v) => v <= GOALS.copyVsNixCopy,
  );
}
