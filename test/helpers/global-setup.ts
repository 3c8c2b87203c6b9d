import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const BUILD_INFO = 'dist/.tsbuildinfo';

/** The newest modification time among what tsc reads to build dist/: src/ and its settings. */
function newestInput(): number {
  let newest = Math.max(statSync('tsconfig.json').mtimeMs, statSync('package.json').mtimeMs);
  const folders = ['src'];
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) folders.push(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * The CLI under test is the built one (bin/cachix -> dist/); build once before all tests.
 * Incremental, with its state inside dist/ (removing dist/ removes both), so a run after a small
 * change, and each mutant of `npm run mutate`, recompiles only what changed. When nothing under
 * src/ is newer than the last build (whose end this setup marks on the build info), even tsc's
 * own check (about 4 s) is skipped.
 * Type errors are reported here but do not stop the run (tsc still emits); `npm run typecheck`,
 * which .ci/run runs first, is what fails on them.
 */
export default function setup(): void {
  if (existsSync('dist/main.js') && existsSync(BUILD_INFO) && statSync(BUILD_INFO).mtimeMs > newestInput()) return;
  const result = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', BUILD_INFO], {
    stdio: 'inherit',
  });
  if (result.status !== 0) process.stderr.write('warning: tsc reported type errors (see above); testing what it emitted\n');
  if (!existsSync('dist/main.js')) throw new Error('the build produced no dist/main.js; run npm run build and fix what it reports');
  // tsc leaves the build info untouched when nothing changed; the mark is when this build ended.
  if (result.status === 0 && existsSync(BUILD_INFO)) {
    const now = new Date();
    utimesSync(BUILD_INFO, now, now);
  }
}
