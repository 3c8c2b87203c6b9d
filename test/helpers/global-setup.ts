import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The CLI under test is the built one (bin/cachix -> dist/); build once before all tests.
 * Type errors are reported here but do not stop the run (tsc still emits); `npm run typecheck`,
 * which .ci/run runs first, is what fails on them.
 */
export default function setup(): void {
  const result = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (result.status !== 0) process.stderr.write('warning: tsc reported type errors (see above); testing what it emitted\n');
  if (!existsSync('dist/main.js')) throw new Error('the build produced no dist/main.js; run npm run build and fix what it reports');
}
