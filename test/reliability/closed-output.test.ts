// `cachix … | head`: the reader of stdout goes away while the command still writes. Node reports
// that as EPIPE, an 'error' event which, unheard, ended the process with a stack trace. Here the
// command ends quietly (exit 0, or 141 as a process killed by SIGPIPE), and the cache is what the
// command leaves when nobody reads its output.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHIX_BIN } from '../helpers/cli.js';
import { expectOk, makeLocalCache, type LocalCache } from '../helpers/cachix-env.js';
import { filesUnder } from '../helpers/cache-files.js';
import { buildWithNix } from '../helpers/nix.js';
import { directorySink, writeSyntheticCache, type SyntheticCache } from '../helpers/synthetic-cache.js';
import { checkCacheConsistent, directoryCache } from './consistency.js';

/**
 * Runs `cachix ARGS | head HEAD_ARGS` in bash; cachix's exit code, its stderr and what head printed.
 * Output beyond a pipe's 64 KiB makes cachix write after head has gone, whatever the timing.
 */
function pipedToHead(
  args: string[],
  headArgs: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stderr: string; headOut: string }> {
  return new Promise((resolve, reject) => {
    const script = 'node "$0" "$@" | head ' + headArgs.join(' ') + '; exit "${PIPESTATUS[0]}"';
    const child = spawn('bash', ['-c', script, CACHIX_BIN, ...args], { env: { ...process.env, CI: 'true', ...env } });
    let headOut = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (headOut += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr, headOut }));
  });
}

function expectQuietEnd(result: { code: number; stderr: string }): void {
  expect([0, 141], result.stderr).toContain(result.code);
  expect(result.stderr).not.toMatch(/EPIPE|Unhandled|node:events|\n\s+at /);
}

describe('output piped into head', () => {
  let cache: LocalCache;
  let scratch: string;
  let synthetic: SyntheticCache;
  let syntheticUrl: string;

  beforeAll(async () => {
    cache = await makeLocalCache('head');
    scratch = await mkdtemp(join(tmpdir(), 'cachix-head-'));
    // 2,000 store paths of about 60 bytes a line: more than a pipe holds.
    synthetic = await writeSyntheticCache(directorySink(join(scratch, 'synthetic')), 2000, 20261207);
    syntheticUrl = `file://${join(scratch, 'synthetic')}`;
  });
  afterAll(async () => {
    await cache?.cleanup();
    await rm(scratch, { recursive: true, force: true });
  });

  it('gc --dry-run | head -1 ends quietly and changes nothing', async () => {
    const before = await filesUnder(join(scratch, 'synthetic'));
    const result = await pipedToHead(['gc', syntheticUrl, '--older-than', '0', '--dry-run'], ['-1'], cache.world.env);
    expectQuietEnd(result);
    expect(result.headOut).toMatch(/^\/nix\/store\/[0-9a-z]{32}-synthetic-\d+\n$/);
    expect(await filesUnder(join(scratch, 'synthetic'))).toEqual(before);
  });

  it('gc | head -1 ends quietly, having finished: the cache consistent, the pinned closure alone left', async () => {
    const result = await pipedToHead(['gc', syntheticUrl, '--older-than', '0', '--grace', '0'], ['-1'], cache.world.env);
    expectQuietEnd(result);
    const directory = directoryCache(join(scratch, 'synthetic'));
    const report = await checkCacheConsistent(directory.listNarinfos, directory.read, { listNars: directory.listNars });
    expect(report.problems).toEqual([]);
    const left = (await directory.listNarinfos()).map((name) => name.slice(0, 32));
    expect(new Set(left)).toEqual(synthetic.pinnedClosure);
  });

  it('pin NAME --list | head -1 and | head -0 end quietly', async () => {
    const pins = join(scratch, 'pins-cache');
    await writeSyntheticCache(directorySink(pins), 10, 7);
    // 600 pins of about 130 bytes a line.
    for (let index = 0; index < 600; index++) {
      const pin = {
        format: 'cachix-any-pin/1',
        name: `release-${index}`,
        keep: { forever: true },
        revisions: [{ storePath: synthetic.storePaths[0], pinnedAt: new Date().toISOString() }],
      };
      await writeFile(join(pins, 'pins', `release-${index}.json`), JSON.stringify(pin));
    }
    const one = await pipedToHead(['pin', `file://${pins}`, '--list'], ['-1'], cache.world.env);
    expectQuietEnd(one);
    expect(one.headOut).toMatch(/^\S+ \/nix\/store\/\S+ \S+ keep=forever live-revisions=1\n$/);
    expectQuietEnd(await pipedToHead(['pin', `file://${pins}`, '--list'], ['-0'], cache.world.env));
  });

  it('verify | head -1 and | head -0 end quietly', async () => {
    const small = await buildWithNix('head-small', 'echo small > $out');
    const big = await buildWithNix('head-big', 'head -c 4000000 /dev/urandom > $out');
    expectOk(await cache.world.run(['push', 'head', small, big]), 'push');
    const one = await pipedToHead(['verify', 'head', small, big], ['-1'], cache.world.env);
    expectQuietEnd(one);
    expect(one.headOut).toBe(`${small} ok\n`);
    expectQuietEnd(await pipedToHead(['verify', 'head', small, big], ['-0'], cache.world.env));
  });

  it('a stdout that fails for another reason (a full disk) is named in one line, exit 1', async () => {
    const child = spawn('bash', ['-c', 'node "$0" --version > /dev/full', CACHIX_BIN]);
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(stderr).toBe('cachix: cannot write the results to stdout: ENOSPC: no space left on device, write\n');
    expect(code).toBe(1);
  });
});
