import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomically, writeFileAtomicallySync } from '../../src/util/atomic-write.js';

// config.toml, nix.conf and netrc (async), and a file cache's narinfos (sync), are replaced as a
// whole: a crash, or a reader at the wrong moment, sees the old file or the new one, never a mix.
// A file rewritten in place keeps its inode, and a reader that had it open sees the new bytes (or
// none, between the truncation and the write); a file renamed into place is a new inode, and the
// old one stays whole for whoever holds it.

const OLD = 'old line\n'.repeat(100_000);
const NEW = 'new\n'.repeat(1_000);

const writers = [
  ['writeFileAtomically', (path: string, data: string) => writeFileAtomically(path, data, { mode: 0o600 })],
  ['writeFileAtomicallySync', async (path: string, data: string) => writeFileAtomicallySync(path, data)],
] as const;

describe.each(writers)('%s', (_name, write) => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cachix-atomic-'));
    path = join(dir, 'config.toml');
    await writeFile(path, OLD);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('replaces the file by a rename: a reader of the old file reads it whole, the new one is another inode', async () => {
    const before = await stat(path);
    const reader = await open(path, 'r');
    try {
      await write(path, NEW);
      const { buffer, bytesRead } = await reader.read(Buffer.alloc(OLD.length + 1), 0, OLD.length + 1, 0);
      expect(bytesRead).toBe(OLD.length);
      expect(buffer.subarray(0, bytesRead).toString() === OLD, 'the old file, as its reader sees it, is whole and unchanged').toBe(true);
    } finally {
      await reader.close();
    }
    expect((await stat(path)).ino).not.toBe(before.ino);
    expect(await readFile(path, 'utf8')).toBe(NEW);
    expect(await readdir(dir)).toEqual(['config.toml']);
  });
});

describe('writeFileAtomically interrupted before the rename', () => {
  it('leaves the old file as it was, and no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cachix-atomic-'));
    try {
      const path = join(dir, 'nix.conf');
      await writeFile(path, OLD);
      const before = await stat(path);
      const interrupted = writeFileAtomically(path, NEW, {
        beforeRename: async () => {
          throw new Error('interrupted');
        },
      });
      await expect(interrupted).rejects.toThrow('interrupted');
      expect((await stat(path)).ino).toBe(before.ino);
      expect((await readFile(path, 'utf8')) === OLD).toBe(true);
      expect(await readdir(dir)).toEqual(['nix.conf']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
