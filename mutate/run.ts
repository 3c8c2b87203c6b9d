// `npm run mutate`: breaks each guarantee on purpose, one curated mutant at a time (mutate/mutants.ts),
// and runs the tests that must notice. A mutant the tests do not notice survives and the run fails.
//
// Our suite runs real Nix, nginx and s3rver, and most guarantees are checked through the built CLI,
// so a generic mutation tool would spend hours on mutants no test reaches. Instead each mutant
// names its tests; the runner applies it in a private copy of the tree (the working tree is never
// touched, so no mutant can be left applied), rebuilds there (vitest's global setup runs tsc,
// incrementally, so tests that spawn bin/cachix see the mutant too), runs only the tests the mutant
// names, and restores the file before the next one.
//
// Several copies work at once (--jobs, one per core by default, at least two): each mutant runs in
// one copy while others run theirs. Mutants whose tests watch /nix/store (test/store-watch-files.ts)
// would see the other copies' builds, so they run last, one at a time, with nothing beside them.
//
// Usage: npm run mutate [-- [--list] [--baseline] [--jobs N] [ID-or-module-substring ...]]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { usesStoreWatcher } from '../test/store-watch-files.js';
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
): Promise<{ failed: boolean; timedOut: boolean; typeErrors: boolean; ranNone: boolean; tail: string }> {
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
      done({ failed: code !== 0, timedOut, typeErrors, ranNone: testsRun(output) === 0, tail: output });
    });
  });
}

/**
 * How many tests the run's summary says ran (passed or failed), from vitest's `Tests  1 failed | 2 passed (5)`.
 * vitest exits 0 when `-t` matches no test (all skipped): such a run proves nothing.
 */
export function testsRun(output: string): number {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const summary = plain.split('\n').find((line) => /^\s*Tests\s/.test(line));
  if (!summary) return 0;
  const count = (word: string): number => Number(new RegExp(`(\\d+) ${word}`).exec(summary)?.[1] ?? 0);
  return count('passed') + count('failed');
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
  // With their times: the tests' setup skips tsc when no source is newer than the build.
  for (const entry of COPIED) await cp(join(ROOT, entry), join(copy, entry), { recursive: true, preserveTimestamps: true });
  // The working tree's build, with its incremental state: the copy's first build then compiles only
  // what differs (tsc compares sources by content, so a stale dist/ is rebuilt where it is stale).
  if (existsSync(join(ROOT, 'dist', '.tsbuildinfo')))
    await cp(join(ROOT, 'dist'), join(copy, 'dist'), { recursive: true, preserveTimestamps: true });
  await symlink(await realpath(join(ROOT, 'node_modules')), join(copy, 'node_modules'));
  return copy;
}

/** Whether any test a mutant names watches /nix/store, and so must run with nothing beside it. */
function watchesStore(killedBy: readonly { file: string }[]): boolean {
  return killedBy.some((test) => usesStoreWatcher(test.file));
}

/**
 * Runs `work` on every item, each in one of the copies: items that may share the machine with
 * others first, one per copy at a time; then those that watch /nix/store, one at a time, alone.
 */
async function inCopies<T>(
  copies: readonly string[],
  items: readonly T[],
  alone: (item: T) => boolean,
  work: (copy: string, item: T) => Promise<void>,
): Promise<void> {
  const shared = items.filter((item) => !alone(item));
  let next = 0;
  await Promise.all(
    copies.map(async (copy) => {
      while (next < shared.length) await work(copy, shared[next++]!);
    }),
  );
  for (const item of items.filter(alone)) await work(copies[0]!, item);
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
        return {
          mutant,
          outcome: 'invalid',
          killer: label,
          reason: 'the mutant does not type-check',
          seconds: (Date.now() - started) / 1000,
        };
      if (run.timedOut) return { mutant, outcome: 'timeout', killer: label, seconds: (Date.now() - started) / 1000 };
      // A name that matches no test leaves vitest green: the mutant was never put to its test.
      // A setup that failed (beforeAll) skips every test: that is no kill either, whatever broke it.
      if (run.ranNone) {
        const reason = run.failed
          ? `no test ran: the setup failed: ${firstFailure(run.tail) ?? 'see the test output'}`
          : 'no test matches the name';
        return { mutant, outcome: 'invalid', killer: label, reason, seconds: (Date.now() - started) / 1000 };
      }
      if (run.failed)
        return { mutant, outcome: 'killed', killer: label, reason: firstFailure(run.tail), seconds: (Date.now() - started) / 1000 };
    }
    return { mutant, outcome: 'survived', seconds: (Date.now() - started) / 1000 };
  } finally {
    await writeFile(path, original);
  }
}

/** The unmutated tree must pass the tests a mutant relies on, or a "kill" means nothing. */
async function baseline(copies: readonly string[], mutants: readonly Mutant[]): Promise<boolean> {
  const tests = new Map<string, { file: string; name?: string }>();
  for (const { killedBy } of mutants) for (const test of killedBy) tests.set(`${test.file}\0${test.name ?? ''}`, test);
  let ok = true;
  await inCopies(
    copies,
    [...tests.values()],
    (test) => usesStoreWatcher(test.file),
    async (copy, test) => {
      const run = await runVitest(copy, test.file, test.name);
      const verdict = run.failed ? 'FAILS' : run.ranNone ? 'RUNS NO TEST' : 'passes';
      log(`baseline ${verdict}: ${test.file}${test.name ? ` -t "${test.name}"` : ''}`);
      if (run.failed || run.ranNone) {
        ok = false;
        log(run.tail);
      }
    },
  );
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
  const jobsAt = args.indexOf('--jobs');
  const jobs = jobsAt >= 0 ? Number(args.splice(jobsAt, 2)[1]) : Math.max(2, availableParallelism());
  if (!Number.isInteger(jobs) || jobs < 1) {
    log('--jobs needs a whole number of copies to work in at once, e.g. --jobs 2');
    return 2;
  }
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

  const started = Date.now();
  const copies: string[] = [];
  const removeCopies = (): Promise<unknown> => Promise.all(copies.map((copy) => rm(copy, { recursive: true, force: true })));
  const interrupted = (): void => {
    void removeCopies().then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const needed = Math.min(jobs, Math.max(1, selected.filter((mutant) => !watchesStore(mutant.killedBy)).length));
    for (let index = 0; index < needed; index++) copies.push(await makeCopy());
    log(`mutating ${copies.length} cop${copies.length === 1 ? 'y' : 'ies'} of the tree: ${copies.join(', ')}`);
    if (args.includes('--baseline') && !(await baseline(copies, selected))) {
      log('the unmutated tree fails the tests above: fix that first');
      return 1;
    }
    const results = new Map<Mutant, Result>();
    await inCopies(
      copies,
      selected,
      (mutant) => watchesStore(mutant.killedBy),
      async (copy, mutant) => {
        const result = await tryMutant(copy, mutant);
        results.set(mutant, result);
        log(`[${results.size}/${selected.length}] ${mutant.id}: ${mutant.breaks}`);
        log(`  ${result.outcome.toUpperCase()}${result.killer ? ` by ${result.killer}` : ''} (${result.seconds.toFixed(0)} s)`);
        if (result.reason) log(`    ${result.reason}`);
      },
    );
    const ordered = selected.map((mutant) => results.get(mutant)!);
    // invalid: the mutant does not type-check, or its killing test's name matches no test (fix mutate/mutants.ts).
    const survivors = ordered.filter((result) => result.outcome === 'survived' || result.outcome === 'invalid');
    process.stdout.write(`${scoreTable(ordered)}\n`);
    for (const { mutant, outcome } of survivors) {
      process.stdout.write(`${outcome === 'invalid' ? 'INVALID' : 'SURVIVED'} ${mutant.id} (${mutant.file}): ${mutant.breaks}\n`);
    }
    const minutes = ((Date.now() - started) / 60_000).toFixed(1);
    process.stdout.write(
      `${ordered.length - survivors.length} of ${ordered.length} mutants killed in ${minutes} min (${copies.length} copies at once)\n`,
    );
    return survivors.length === 0 ? 0 : 1;
  } finally {
    await removeCopies();
  }
}

process.exitCode = await main();
