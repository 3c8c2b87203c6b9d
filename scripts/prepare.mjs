// npm's `prepare`: builds dist/ from src/ with tsc. `npm install -g .` in a fresh clone links the
// folder and runs this without installing anything in it, so neither tsc nor the dependencies
// `bin/cachix` loads are there: install them first (from package-lock.json), then build.
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
// The global install's own settings (global, prefix) are not for installing into this folder.
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_config_(global|prefix|location)$/i.test(name)));
const run = (command, args) => execFileSync(command, args, { cwd: root, stdio: 'inherit', env });

if (!existsSync(join(root, 'node_modules', 'typescript', 'bin', 'tsc'))) {
  process.stderr.write('cachix-any: installing the dependencies needed to build (npm ci --ignore-scripts)' + '\n');
  run(npm[0], [...npm.slice(1), 'ci', '--ignore-scripts', '--no-audit', '--no-fund']);
  // zstd-napi's native binding comes from its own install script, which --ignore-scripts skipped.
  run(npm[0], [...npm.slice(1), 'rebuild', 'zstd-napi']);
}
// Incremental, with the state the tests' global setup uses: their build then finds nothing to do.
run(process.execPath, [
  join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
  '-p',
  'tsconfig.json',
  '--incremental',
  '--tsBuildInfoFile',
  'dist/.tsbuildinfo',
]);
