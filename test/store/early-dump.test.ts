// The dump started at the process entry for the path a push names (store/early-dump.ts): it reads
// ahead before anyone asks, gives exactly `nix-store --dump`'s NAR to the one who takes it, follows
// the same walk rule as every other dump, and a dump nobody takes leaves no nix-store running.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { earlyDumpHeldBytes, startDumpEarly, stopEarlyDump, takeEarlyDump } from '../../src/store/early-dump.js';
import { nixDump, requireNix } from '../helpers/nix.js';
import { waitUntil } from '../helpers/wait.js';

let scratch: string;
beforeAll(() => {
  requireNix();
  scratch = mkdtempSync(join(tmpdir(), 'early-dump-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A tree of `files` tiny files in a few folders: files + 4 entries. */
function tinyFilesTree(files: number): string {
  const root = mkdtempSync(join(scratch, 'tree-'));
  for (let folder = 0; folder < 4; folder++) mkdirSync(join(root, `d${folder}`));
  for (let file = 0; file < files; file++) writeFileSync(join(root, `d${file % 4}`, `f${file}`), `tiny ${file}\n`);
  return root;
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return Buffer.concat(all);
}

const dumping = (path: string): boolean => spawnSync('pgrep', ['-f', `nix-store --dump ${path}$`]).status === 0;

describe('the dump started early for the path a push names', () => {
  it('reads ahead before anyone asks, and whoever takes it gets the NAR nix-store --dump gives', async () => {
    const root = tinyFilesTree(3000);
    const reference = await nixDump(root);
    startDumpEarly(root);
    await waitUntil('the early dump to read the whole NAR ahead', () => earlyDumpHeldBytes(root) === reference.length);
    const taken = await takeEarlyDump(root, reference.length);
    expect(taken).toBeDefined();
    expect((await collect(taken!)).equals(reference)).toBe(true);
    expect(await takeEarlyDump(root, reference.length), 'taken twice').toBeUndefined();
  });

  it('is not taken for another path, nor where our walk is the cheaper (entries averaging over 2 KiB)', async () => {
    const root = tinyFilesTree(1500);
    startDumpEarly(root);
    expect(await takeEarlyDump(join(root, 'd0'), 1000)).toBeUndefined();
    startDumpEarly(root);
    await waitUntil('the early dump to start', () => earlyDumpHeldBytes(root));
    expect(await takeEarlyDump(root, 1504 * 4096)).toBeUndefined();
    await waitUntil('nix-store to be stopped', () => !dumping(root));
  });

  it('a tree of few entries is never dumped early', async () => {
    const root = tinyFilesTree(100);
    startDumpEarly(root);
    expect(await takeEarlyDump(root, 100 * 150)).toBeUndefined();
  });

  it('a dump nobody takes is stopped, with nix-store, and only when its path is not wanted', async () => {
    // More than the read-ahead holds would keep nix-store running until stopped.
    const root = tinyFilesTree(3000);
    for (let file = 0; file < 40; file++) writeFileSync(join(root, `big${file}`), Buffer.alloc(1 << 20, file));
    startDumpEarly(root);
    await waitUntil('the early dump to start', () => earlyDumpHeldBytes(root));
    stopEarlyDump((path) => path === root);
    expect(earlyDumpHeldBytes(root), 'still wanted: still running').toBeDefined();
    stopEarlyDump((path) => path !== root);
    expect(earlyDumpHeldBytes(root)).toBeUndefined();
    await waitUntil('nix-store to be stopped', () => !dumping(root));
  });
});
