import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpNar } from '../../src/store/nar-dump.js';
import { parseNar } from '../../src/nix/nar/parse.js';
import { restoreNar } from '../helpers/nar-restore.js';
import { buildTestClosure, nixClosure, nixDump, requireNix } from '../helpers/nix.js';

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return Buffer.concat(all);
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** parse -> restore -> dump again must give back the very same bytes. */
async function roundTrip(nar: Buffer, scratch: string): Promise<Buffer> {
  const target = join(mkdtempSync(join(scratch, 'restore-')), 'out');
  await restoreNar(once(nar), target);
  return collect(dumpNar(target));
}

let scratch: string;
beforeAll(() => {
  requireNix();
  scratch = mkdtempSync(join(tmpdir(), 'nar-dump-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function makeTree(): string {
  const root = mkdtempSync(join(scratch, 'tree-'));
  // Byte order differs from locale order (B a _ Z é) and from UTF-16 order (U+FB00 vs an emoji).
  for (const name of ['B', 'a', '_', 'Z', 'é', 'e', 'ﬀ', '😀', 'a.b', 'a-b', 'aa']) writeFileSync(join(root, name), name);
  writeFileSync(Buffer.from(`${root}/latin1-\xff`, 'latin1'), 'not UTF-8'); // a name that is not UTF-8
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'eight'), '12345678'); // a multiple of 8: no padding
  writeFileSync(join(root, 'nine'), '123456789');
  mkdirSync(join(root, 'emptydir'));
  mkdirSync(join(root, 'deep/er/still'), { recursive: true });
  writeFileSync(join(root, 'deep/er/still/file'), 'nested\n');
  writeFileSync(join(root, 'deep/z-after-dir'), 'z');
  for (const [name, mode] of [
    ['exec-owner', 0o744],
    ['exec-group-only', 0o654],
    ['exec-all', 0o777],
    ['readonly', 0o400],
  ] as const) {
    writeFileSync(join(root, name), `#!/bin/sh\necho ${name}\n`);
    chmodSync(join(root, name), mode);
  }
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
  symlinkSync('deep/er', join(root, 'relative-link'));
  symlinkSync(Buffer.from('odd \xff target', 'latin1'), join(root, 'odd-link'));
  writeFileSync(join(root, 'medium.bin'), randomBytes(100_001)); // bigger than most chunk sizes below
  return root;
}

describe('dumpNar is byte-identical to nix-store --dump', () => {
  it('on every path of a closure built by Nix', async () => {
    const { top } = await buildTestClosure('nar-dump');
    const closure = await nixClosure(top);
    expect(closure.length).toBe(3);
    for (const storePath of closure) {
      const ours = await collect(dumpNar(storePath));
      expect(ours.equals(await nixDump(storePath)), storePath).toBe(true);
      expect((await roundTrip(ours, scratch)).equals(ours), `round trip of ${storePath}`).toBe(true);
    }
  });

  it('on a tree outside the store with every kind of entry, at any chunk size', async () => {
    const root = makeTree();
    const reference = await nixDump(root);
    for (const chunkSize of [1, 7, 8, 13, 4096, 65536, 1 << 20]) {
      const chunks: Buffer[] = [];
      for await (const chunk of dumpNar(root, { chunkSize })) chunks.push(chunk);
      expect(
        chunks.every((chunk) => chunk.length <= chunkSize),
        `chunk size ${chunkSize}`,
      ).toBe(true);
      expect(Buffer.concat(chunks).equals(reference), `chunk size ${chunkSize}`).toBe(true);
    }
    expect((await roundTrip(reference, scratch)).equals(reference)).toBe(true);
  });

  it('on a top-level file, executable file, empty file and symlink', async () => {
    const dir = mkdtempSync(join(scratch, 'top-'));
    writeFileSync(join(dir, 'file'), 'just a file\n');
    writeFileSync(join(dir, 'script'), '#!/bin/sh\n');
    chmodSync(join(dir, 'script'), 0o755);
    writeFileSync(join(dir, 'empty'), '');
    symlinkSync('file', join(dir, 'link'));
    symlinkSync('/does/not/exist', join(dir, 'dangling'));
    for (const name of ['file', 'script', 'empty', 'link', 'dangling']) {
      const path = join(dir, name);
      const ours = await collect(dumpNar(path));
      expect(ours.equals(await nixDump(path)), name).toBe(true);
      expect((await roundTrip(ours, scratch)).equals(ours), `round trip of ${name}`).toBe(true);
    }
  });

  it('on a 20 MB file, streamed in chunks no bigger than asked for', async () => {
    const dir = mkdtempSync(join(scratch, 'large-'));
    const path = join(dir, 'large.bin');
    writeFileSync(path, randomBytes(20 * 1024 * 1024 + 3));
    const reference = await nixDump(path);
    const chunks: Buffer[] = [];
    for await (const chunk of dumpNar(path)) chunks.push(chunk);
    expect(Math.max(...chunks.map((chunk) => chunk.length))).toBe(1 << 20);
    expect(chunks.length).toBeGreaterThan(20);
    // Every chunk is its own memory: a writer that reused buffers would corrupt the earlier ones.
    expect(new Set(chunks.map((chunk) => chunk.buffer)).size).toBe(chunks.length);
    expect(Buffer.concat(chunks).equals(reference)).toBe(true);
  });

  it('on a tree of 3000 small files, matching Nix', async () => {
    const root = mkdtempSync(join(scratch, 'many-'));
    for (let dirIndex = 0; dirIndex < 30; dirIndex++) {
      mkdirSync(join(root, `d${dirIndex}`));
      for (let fileIndex = 0; fileIndex < 100; fileIndex++) {
        writeFileSync(join(root, `d${dirIndex}`, `f${fileIndex}`), randomBytes((dirIndex * 131 + fileIndex * 17) % 1500));
      }
    }
    expect((await collect(dumpNar(root))).equals(await nixDump(root))).toBe(true);
  });
});

describe('dumpNar refuses what a NAR cannot hold, as Nix does', () => {
  async function expectBothReject(path: string, kind: RegExp): Promise<void> {
    const nix = spawnSync('nix-store', ['--dump', path]);
    expect(nix.status).not.toBe(0);
    await expect(collect(dumpNar(path))).rejects.toThrow(kind);
    await expect(collect(dumpNar(path))).rejects.toThrow(path);
  }

  it('a FIFO, alone or inside a directory', async () => {
    const dir = mkdtempSync(join(scratch, 'fifo-'));
    const fifo = join(dir, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expectBothReject(fifo, /named pipe/);
    await expectBothReject(dir, /named pipe/);
  });

  it('a socket', async () => {
    const dir = mkdtempSync(join(scratch, 'sock-'));
    const socketPath = join(dir, 'socket');
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      await expectBothReject(socketPath, /socket/);
    } finally {
      server.close();
    }
  });

  it('a character device', async () => {
    await expectBothReject('/dev/null', /character device/);
  });

  it('a path that does not exist', async () => {
    await expect(collect(dumpNar(join(scratch, 'no-such-path')))).rejects.toThrow(/ENOENT/);
  });
});

describe('dumpNar never emits a corrupt NAR for a file that changes under it', () => {
  function largeFile(): string {
    const path = join(mkdtempSync(join(scratch, 'changing-')), 'file');
    writeFileSync(path, randomBytes(3 * 65536));
    return path;
  }

  it('throws when the file grows while being read', async () => {
    const path = largeFile();
    const dump = dumpNar(path, { chunkSize: 65536 });
    await dump.next();
    appendFileSync(path, 'more');
    await expect(collect(dump)).rejects.toThrow(/grew while being archived/);
  });

  it('throws when the file shrinks while being read', async () => {
    const path = largeFile();
    const dump = dumpNar(path, { chunkSize: 65536 });
    await dump.next();
    truncateSync(path, 1000);
    await expect(collect(dump)).rejects.toThrow(/shrank while being archived/);
  });
});

describe('dumpNar entries seen through parseNar', () => {
  it('lists the tree in NAR order with types, sizes and executable bits', async () => {
    const root = mkdtempSync(join(scratch, 'list-'));
    mkdirSync(join(root, 'bin'));
    writeFileSync(join(root, 'bin/run'), 'run');
    chmodSync(join(root, 'bin/run'), 0o755);
    writeFileSync(join(root, 'B'), '');
    symlinkSync('bin/run', join(root, 'a'));
    const listed: string[] = [];
    for await (const entry of parseNar(dumpNar(root))) {
      const detail =
        entry.type === 'regular' ? `${entry.size}${entry.executable ? ' x' : ''}` : entry.type === 'symlink' ? `-> ${entry.target}` : '';
      listed.push(`${entry.type} '${entry.path}' ${detail}`.trim());
    }
    expect(listed).toEqual(["directory ''", "regular 'B' 0", "symlink 'a' -> bin/run", "directory 'bin'", "regular 'bin/run' 3 x"]);
  });
});
