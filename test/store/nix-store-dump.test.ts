import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpNar } from '../../src/store/nar-dump.js';
import { hasMoreEntriesThan, nixDumpIsCheaper, nixStoreDump } from '../../src/store/nix-store-dump.js';
import { nixDump, requireNix } from '../helpers/nix.js';

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return Buffer.concat(all);
}

let scratch: string;
beforeAll(() => {
  requireNix();
  scratch = mkdtempSync(join(tmpdir(), 'nix-store-dump-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** `directories` directories of `filesEach` small files: directories * (filesEach + 1) entries. */
function wideTree(directories: number, filesEach: number): string {
  const root = mkdtempSync(join(scratch, 'tree-'));
  for (let directory = 0; directory < directories; directory++) {
    mkdirSync(join(root, `d${directory}`));
    for (let file = 0; file < filesEach; file++) writeFileSync(join(root, `d${directory}`, `f${file}.js`), `module ${directory} ${file}\n`);
  }
  return root;
}

describe('nixStoreDump', () => {
  it('streams the same NAR as our own walk, for a tree of many small entries', async () => {
    const root = wideTree(40, 60);
    symlinkSync('d0/f0.js', join(root, 'link'));
    const fromNix = await collect(nixStoreDump(root));
    expect(fromNix.equals(await collect(dumpNar(root)))).toBe(true);
    expect(fromNix.equals(await nixDump(root))).toBe(true);
  });

  it("fails with nix-store's own words for a path it cannot dump", async () => {
    await expect(collect(nixStoreDump(join(scratch, 'no-such-path')))).rejects.toThrow(
      /nix-store --dump .*no-such-path failed: .*No such file/,
    );
  });

  it('stops nix-store when the reader stops early, however much is left', async () => {
    const root = wideTree(20, 100);
    const dump = nixStoreDump(root);
    const first = await dump.next();
    expect(first.done).toBe(false);
    await dump.return(undefined);
    const running = (): boolean => spawnSync('pgrep', ['-f', `nix-store --dump ${root}`]).status === 0;
    for (let tries = 0; tries < 50 && running(); tries++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(running()).toBe(false);
  });
});

describe('which walk is cheaper', () => {
  it('hasMoreEntriesThan counts files, directories and symlinks, and stops once it knows', () => {
    const root = wideTree(3, 4); // 3 directories + 12 files
    symlinkSync('d0', join(root, 'link'));
    expect(hasMoreEntriesThan(root, 15)).toBe(true);
    expect(hasMoreEntriesThan(root, 16)).toBe(false);
    expect(hasMoreEntriesThan(join(root, 'd0', 'f0.js'), 0)).toBe(false);
    expect(hasMoreEntriesThan(join(scratch, 'missing'), 0)).toBe(false);
  });

  it("Nix's for thousands of small files, ours for a few big ones or a small tree", () => {
    const many = wideTree(50, 60);
    expect(nixDumpIsCheaper(many, 50 * 60 * 150)).toBe(true);
    // The same entries averaging a MiB each: the pipe would cost more than our per-entry overhead.
    expect(nixDumpIsCheaper(many, 50 * 61 * (1 << 20))).toBe(false);
    // Averaging 4 KiB (a share/ of docs and locales): ours, measured faster among other NARs.
    expect(nixDumpIsCheaper(many, 50 * 61 * 4096)).toBe(false);
    expect(nixDumpIsCheaper(wideTree(5, 10), 55 * 150)).toBe(false);
  });
});
