import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The CLI under test is the built one (bin/cachix -> dist/); build once before all tests. */
export default function setup(): void {
  const result = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (result.status !== 0 || !existsSync('dist/cli.js')) throw new Error('npm run build failed; the tests need dist/');
}
