// `npm run mutate`: breaks each guarantee on purpose, one curated mutant at a time (mutate/mutants.ts),
// and runs the tests that must notice. A mutant the tests do not notice survives and the run fails.
//
// Our suite runs real Nix, nginx and s3rver, and most guarantees are checked through the built CLI,
// so a generic mutation tool would spend hours on mutants no test reaches. Instead each mutant
// names its tests; the runner applies it in a private copy of the tree (the working tree is never
// touched, so no mutant can be left applied), rebuilds there (vitest's global setup runs tsc, so
// tests that spawn bin/cachix see the mutant too), and restores the file before the next one.
//
// Usage: npm run mutate [-- [--list] [--baseline] [ID-or-module-substring ...]]
import { spawn } from 'node:child_process';
import { chmod, cp, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MUTANTS, type Mutant } from './mutants.js';

const ROOT = resolve(import.meta.dirname, '..');
/** What a test run needs; dist/ is rebuilt in the copy by vitest's global setup. */
// README.md, mutate/ and .ci/ for test/readme.test.ts, which runs README's examples and checks them against CI.
const COPIED = [
  'src',
  'test',
  'bin',
  'package.json',
  'tsconfig.json',
  'tsconfig.test.json',
  'vitest.config.ts',
  'README.md',
  'mutate',
  '.ci',
];
/** A mutant that makes a test hang is killed by the timeout (its test would fail in CI as well). */
const RUN_TIMEOUT_MS = 20 * 60_000;
/** What vitest's global setup prints when tsc finds type errors (it still emits and tests run). */
const TYPE_ERRORS = 'tsc reported type errors';

type Outcome = 'killed' | 'survived' | 'timeout' | 'invalid';

interface Result {
  mutant: Mutant;
  outcome: Outcome;
  killer?: string;
  /** The first assertion the mutant broke, to show it was killed for the right reason. */
  reason?: string;
  seconds: number;
}

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** The mutated text, or an error naming the mutant when its `find` no longer matches exactly once. */
export function applyMutant(source: string, mutant: Mutant): string {
  const first = source.indexOf(mutant.find);
  if (first < 0) throw new Error(`mutant ${mutant.id}: its text is no longer in ${mutant.file}; update mutate/mutants.ts`);
  if (source.indexOf(mutant.find, first + 1) >= 0) throw new Error(`mutant ${mutant.id}: its text occurs more than once in ${mutant.file}`);
  return source.slice(0, first) + mutant.replace + source.slice(first + mutant.find.length);
}

/** Runs one vitest invocation in the copy; resolves with whether it failed and the tail of its output. */
function runVitest(
  copy: string,
  file: string,
  name: string | undefined,
): Promise<{ failed: boolean; timedOut: boolean; typeErrors: boolean; tail: string }> {
  const args = ['vitest', 'run', file, ...(name ? ['-t', name] : [])];
  return new Promise((done) => {
    const child = spawn('npx', args, { cwd: copy, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let typeErrors = false;
    const keep = (chunk: Buffer): void => {
      const joined = output + chunk.toString('utf8');
      typeErrors ||= joined.includes(TYPE_ERRORS);
      output = joined.slice(-20000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole group: vitest's forks and the servers its tests started.
      process.kill(-child.pid!, 'SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ failed: code !== 0, timedOut, typeErrors, tail: output });
    });
  });
}

function firstFailure(output: string): string | undefined {
  // vitest colours its output even when piped; the reason is easier to read without.
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  return plain
    .split('\n')
    .find((line) => /AssertionError|Error:|expected /.test(line))
    ?.trim()
    .slice(0, 300);
}

async function makeCopy(): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), 'cachix-mutate-'));
  // mkdtemp makes it 0700; the trust tests run the CLI as another user, who must reach bin/ and dist/.
  await chmod(copy, 0o755);
  for (const entry of COPIED) await cp(join(ROOT, entry), join(copy, entry), { recursive: true });
  await symlink(await realpath(join(ROOT, 'node_modules')), join(copy, 'node_modules'));
  return copy;
}

async function tryMutant(copy: string, mutant: Mutant): Promise<Result> {
  const path = join(copy, mutant.file);
  const original = await readFile(path, 'utf8');
  const started = Date.now();
  try {
    await writeFile(path, applyMutant(original, mutant));
    for (const test of mutant.killedBy) {
      const label = test.name ? `${test.file} -t "${test.name}"` : test.file;
      const run = await runVitest(copy, test.file, test.name);
      // vitest's global setup builds with tsc and says so when the mutant does not type-check: a
      // test failing on that proves nothing about the guarantee.
      if (run.tail.includes('tsc reported type errors'))
        return { mutant, outcome: 'invalid', killer: label, seconds: (Date.now() - started) / 1000 };
      if (run.timedOut) return { mutant, outcome: 'timeout', killer: label, seconds: (Date.now() - started) / 1000 };
      if (run.failed)
        return { mutant, outcome: 'killed', killer: label, reason: firstFailure(run.tail), seconds: (Date.now() - started) / 1000 };
    }
    return { mutant, outcome: 'survived', seconds: (Date.now() - started) / 1000 };
  } finally {
    await writeFile(path, original);
  }
}

/** The unmutated tree must pass the tests a mutant relies on, or a "kill" means nothing. */
async function baseline(copy: string, mutants: readonly Mutant[]): Promise<boolean> {
  const seen = new Set<string>();
  let ok = true;
  for (const { killedBy } of mutants) {
    for (const test of killedBy) {
      const key = `${test.file}\0${test.name ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const run = await runVitest(copy, test.file, test.name);
      log(`baseline ${run.failed ? 'FAILS' : 'passes'}: ${test.file}${test.name ? ` -t "${test.name}"` : ''}`);
      if (run.failed) {
        ok = false;
        log(run.tail);
      }
    }
  }
  return ok;
}

function scoreTable(results: readonly Result[]): string {
  const modules = new Map<string, { killed: number; total: number }>();
  for (const { mutant, outcome } of results) {
    const score = modules.get(mutant.file) ?? { killed: 0, total: 0 };
    score.total++;
    if (outcome === 'killed' || outcome === 'timeout') score.killed++;
    modules.set(mutant.file, score);
  }
  const rows = [...modules].map(([file, { killed, total }]) => `| ${file} | ${killed}/${total} | ${Math.round((100 * killed) / total)}% |`);
  return ['| module | killed | score |', '|---|---|---|', ...rows].join('\n');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const filters = args.filter((arg) => !arg.startsWith('--'));
  const selected = MUTANTS.filter(
    (mutant) => filters.length === 0 || filters.some((filter) => mutant.id.includes(filter) || mutant.file.includes(filter)),
  );
  if (args.includes('--list')) {
    for (const mutant of selected) log(`${mutant.id}  (${mutant.file}): ${mutant.breaks}`);
    return 0;
  }
  if (selected.length === 0) {
    log(`no mutant matches ${filters.join(' ')}; see npm run mutate -- --list`);
    return 2;
  }
  // Every mutant must still apply to the real tree before any time is spent running tests.
  for (const mutant of selected) applyMutant(await readFile(join(ROOT, mutant.file), 'utf8'), mutant);

  const copy = await makeCopy();
  const removeCopy = (): Promise<void> => rm(copy, { recursive: true, force: true });
  const interrupted = (): void => {
    void removeCopy().then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    log(`mutating a copy of the tree in ${copy}`);
    if (args.includes('--baseline') && !(await baseline(copy, selected))) {
      log('the unmutated tree fails the tests above: fix that first');
      return 1;
    }
    const results: Result[] = [];
    for (const [index, mutant] of selected.entries()) {
      log(`[${index + 1}/${selected.length}] ${mutant.id}: ${mutant.breaks}`);
      const result = await tryMutant(copy, mutant);
      results.push(result);
      log(`  ${result.outcome.toUpperCase()}${result.killer ? ` by ${result.killer}` : ''} (${result.seconds.toFixed(0)} s)`);
      if (result.reason) log(`    ${result.reason}`);
    }
    const survivors = results.filter((result) => result.outcome === 'survived' || result.outcome === 'invalid');
    process.stdout.write(`${scoreTable(results)}\n`);
    for (const { mutant, outcome } of survivors) {
      const verdict = outcome === 'invalid' ? 'DOES NOT TYPE-CHECK (fix mutate/mutants.ts)' : 'SURVIVED';
      process.stdout.write(`${verdict} ${mutant.id} (${mutant.file}): ${mutant.breaks}\n`);
    }
    process.stdout.write(`${results.length - survivors.length} of ${results.length} mutants killed\n`);
    return survivors.length === 0 ? 0 : 1;
  } finally {
    await removeCopy();
  }
}

process.exitCode = await main();
