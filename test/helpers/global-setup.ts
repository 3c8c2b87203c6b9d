import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * The CLI under test is the built one (bin/cachix -> dist/); build once before all tests.
 * Incremental, with its state inside dist/ (removing dist/ removes both), so a run after a small
 * change, and each mutant of `npm run mutate`, recompiles only what changed.
 * Type errors are reported here but do not stop the run (tsc still emits); `npm run typecheck`,
 * which .ci/run runs first, is what fails on them.
 */
export default function setup(): void {
  const result = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', 'dist/.tsbuildinfo'], {
    stdio: 'inherit',
  });
  if (result.status !== 0) process.stderr.write('warning: tsc reported type errors (see above); testing what it emitted\n');
  if (!existsSync('dist/main.js')) throw new Error('the build produced no dist/main.js; run npm run build and fix what it reports');
}
