import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NarParseError, parseNar } from '../../src/nix/nar/parse.js';
import { formatNarInfo, parseNarInfo } from '../../src/nix/narinfo.js';
import { buildWithNix, NIX_FEATURES, nixDump, NO_SUBSTITUTERS, run } from '../helpers/nix.js';
import { seededRandom } from '../helpers/seeded-random.js';

/**
 * Random mutations of real bytes from Nix. Seeded, so a failure names the seed and case that
 * reproduce it: FUZZ_SEED=<seed> npx vitest run test/nix/fuzz.test.ts (FUZZ_CASES=<n> for a longer run)
 */
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed2024);
const CASES_PER_MUTATION = Number(process.env.FUZZ_CASES ?? 2000);

type Mutation = (input: Buffer, random: () => number) => Buffer;
const below = (random: () => number, n: number): number => Math.floor(random() * n);

const MUTATIONS: Record<string, Mutation> = {
  'bit flips': (input, random) => {
    const out = Buffer.from(input);
    const flips = 1 + below(random, 3);
    for (let i = 0; i < flips; i++) {
      const at = below(random, out.length);
      out[at] = out[at]! ^ (1 << below(random, 8));
    }
    return out;
  },
  truncations: (input, random) => input.subarray(0, below(random, input.length)),
  insertions: (input, random) => {
    const at = below(random, input.length + 1);
    // Sometimes printable text (looks like a field), sometimes any bytes, sometimes NAR-ish tokens.
    const choices = [
      Buffer.from(Array.from({ length: 1 + below(random, 16) }, () => below(random, 256))),
      Buffer.from(['\n', ': ', 'Sig: x', 'References: ', '(', ')', 'entry', '\0', 'ÿ'][below(random, 9)]!),
      Buffer.from([1 + below(random, 255), 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    ];
    return Buffer.concat([input.subarray(0, at), choices[below(random, choices.length)]!, input.subarray(at)]);
  },
  'byte duplications': (input, random) => {
    const start = below(random, input.length);
    const end = Math.min(input.length, start + 1 + below(random, 64));
    return Buffer.concat([input.subarray(0, end), input.subarray(start, end), input.subarray(end)]);
  },
};

/** Runs every mutation CASES_PER_MUTATION times; `check` returns a problem, or undefined when fine. */
async function fuzz(
  name: string,
  corpus: Buffer[],
  check: (mutated: Buffer, random: () => number) => Promise<string | undefined> | string | undefined,
): Promise<string[]> {
  const problems: string[] = [];
  for (const [mutationName, mutate] of Object.entries(MUTATIONS)) {
    for (let index = 0; index < CASES_PER_MUTATION; index++) {
      // One generator per case, so a case reproduces alone from its seed and index.
      const caseSeed = (SEED ^ Math.imul(index + 1, 0x9e3779b1) ^ hashName(`${name}/${mutationName}`)) >>> 0;
      const random = seededRandom(caseSeed);
      const input = corpus[below(random, corpus.length)]!;
      const mutated = mutate(input, random);
      const problem = await check(mutated, random);
      if (problem) problems.push(`${mutationName} case ${index} (FUZZ_SEED=${SEED}, case seed ${caseSeed}): ${problem}`);
      if (problems.length >= 5) return problems;
    }
  }
  return problems;
}

function hashName(text: string): number {
  let hash = 2166136261;
  for (const char of text) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  return hash >>> 0;
}

describe('fuzzing the parsers with mutations of real Nix output', () => {
  let dir: string;
  let narInfos: Buffer[];
  let nars: Buffer[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachix-fuzz-'));
    await run('nix-store', ['--generate-binary-cache-key', 'fuzz-1', join(dir, 'sec'), join(dir, 'pub')]);
    const leaf = await buildWithNix(
      'fuzz-leaf',
      `
mkdir -p $out/a/b $out/empty
printf 'hello\\n' > $out/a/b/file
: > $out/a/zero
printf '#!/bin/sh\\necho x\\n' > $out/run; chmod +x $out/run
ln -s a/b/file $out/link
ln -s /nonexistent $out/dangling
head -c 1000 /dev/urandom > $out/a/noise
`,
    );
    const top = await buildWithNix('fuzz-top', 'mkdir -p $out; ln -s $dep0 $out/leaf; echo $dep0 > $out/ref', { deps: [leaf] });
    const file = await buildWithNix('fuzz-file', 'printf "just a file" > $out');
    // A store path that is itself a symlink, added rather than built (no builder needed).
    await symlink(`/somewhere/${process.pid}-${Date.now()}-${Math.random()}`, join(dir, 'fuzz-link'));
    const link = (await run('nix-store', ['--add', join(dir, 'fuzz-link')])).trim();
    const cacheDir = join(dir, 'cache');
    await run('nix', [
      ...NIX_FEATURES,
      'copy',
      '--to',
      `file://${cacheDir}?compression=xz&secret-key=${join(dir, 'sec')}`,
      top,
      file,
      link,
      ...NO_SUBSTITUTERS,
    ]);
    narInfos = [];
    for (const name of await readdir(cacheDir)) {
      if (name.endsWith('.narinfo')) narInfos.push(await readFile(join(cacheDir, name)));
    }
    nars = await Promise.all([leaf, top, file, link].map((path) => nixDump(path)));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('the corpus is real and parses unmutated', async () => {
    expect(narInfos).toHaveLength(4);
    for (const text of narInfos) expect(formatNarInfo(parseNarInfo(text.toString('utf8')))).toBe(text.toString('utf8'));
    for (const nar of nars) expect((await parseWholeNar(nar, () => 0.5)).length).toBeGreaterThan(0);
  });

  it(`parseNarInfo: ${CASES_PER_MUTATION} cases of each mutation either parse, stably, or throw an Error naming the problem`, async () => {
    const outcomes = { parsed: 0, rejected: 0 };
    const problems = await fuzz('narinfo', narInfos, (mutated) => {
      const text = mutated.toString('utf8');
      let parsed;
      try {
        parsed = parseNarInfo(text);
        outcomes.parsed++;
      } catch (error) {
        outcomes.rejected++;
        if (!(error instanceof Error) || error.constructor !== Error) return `threw ${describeError(error)}`;
        if (!error.message.startsWith('narinfo')) return `error message does not start with 'narinfo': ${error.message}`;
        return undefined;
      }
      // What parses must survive a round trip through the formatter unchanged.
      try {
        const again = parseNarInfo(formatNarInfo(parsed));
        expect(again).toEqual(parsed);
      } catch (error) {
        return `parsed, but the formatted text does not read back the same: ${describeError(error)}\n${JSON.stringify(text)}`;
      }
      return undefined;
    });
    expect(problems).toEqual([]);
    // The mutations must exercise both paths, or this test proves nothing.
    expect(outcomes.parsed).toBeGreaterThan(100);
    expect(outcomes.rejected).toBeGreaterThan(100);
  }, 60_000);

  it(`parseNar: ${CASES_PER_MUTATION} cases of each mutation either parse or throw NarParseError, in random chunkings`, async () => {
    const outcomes = { parsed: 0, rejected: 0 };
    const problems = await fuzz('nar', nars, async (mutated, random) => {
      try {
        await parseWholeNar(mutated, random);
        outcomes.parsed++;
      } catch (error) {
        outcomes.rejected++;
        if (!(error instanceof NarParseError)) return `threw ${describeError(error)}`;
      }
      return undefined;
    });
    expect(problems).toEqual([]);
    expect(outcomes.parsed).toBeGreaterThan(100);
    expect(outcomes.rejected).toBeGreaterThan(100);
  }, 60_000);
});

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}\n${error.stack?.split('\n').slice(1, 4).join('\n')}`;
  return `a non-Error ${typeof error}: ${String(error)}`;
}

/** Feeds the NAR in random chunk sizes and reads some files' contents, skipping others. */
async function parseWholeNar(nar: Buffer, random: () => number): Promise<string[]> {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let offset = 0;
    while (offset < nar.length) {
      const size = 1 + Math.floor(random() * (random() < 0.5 ? 16 : 4096));
      yield nar.subarray(offset, offset + size);
      offset += size;
    }
  }
  const seen: string[] = [];
  for await (const entry of parseNar(chunks())) {
    seen.push(`${entry.type} ${entry.path}`);
    if (entry.type === 'regular' && random() < 0.7) {
      let total = 0;
      for await (const piece of entry.contents) total += piece.length;
      if (total !== entry.size) throw new Error(`file ${entry.path} gave ${total} bytes, its header says ${entry.size}`);
    }
  }
  return seen;
}
