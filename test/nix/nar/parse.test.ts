import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NarParseError, NarParser, parseNar, type NarEntry } from '../../../src/nix/nar/parse.js';
import { nixDump, requireNix } from '../../helpers/nix.js';

// NARs written by hand, independently of our writer: the framing is simple enough to spell out.
function str(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([length, bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
}
type Token = string | Buffer;
const nar = (...tokens: Token[]): Buffer => Buffer.concat([str('nix-archive-1'), ...tokens.map(str)]);
const file = (contents: string, executable = false): Token[] => [
  '(',
  'type',
  'regular',
  ...(executable ? ['executable', ''] : []),
  'contents',
  contents,
  ')',
];
const link = (target: Token): Token[] => ['(', 'type', 'symlink', 'target', target, ')'];
const dir = (...entries: [Token, Token[]][]): Token[] => [
  '(',
  'type',
  'directory',
  ...entries.flatMap(([name, node]) => ['entry', '(', 'name', name, 'node', ...node, ')']),
  ')',
];

async function* inPieces(bytes: Buffer, pieceSize: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += pieceSize) yield bytes.subarray(offset, offset + pieceSize);
}

/** Parses fully, reading all contents; returns a readable listing. */
async function list(source: AsyncIterable<Uint8Array>): Promise<string[]> {
  const listed: string[] = [];
  for await (const entry of parseNar(source)) listed.push(await describeEntry(entry));
  return listed;
}

async function describeEntry(entry: NarEntry): Promise<string> {
  if (entry.type === 'directory') return `dir '${entry.path}'`;
  if (entry.type === 'symlink') return `link '${entry.path}' -> ${entry.target}`;
  const pieces: Buffer[] = [];
  for await (const piece of entry.contents) pieces.push(piece);
  const contents = Buffer.concat(pieces);
  expect(contents.length).toBe(entry.size);
  return `file '${entry.path}'${entry.executable ? ' x' : ''} ${contents.toString()}`;
}

async function parseError(bytes: Buffer): Promise<NarParseError> {
  try {
    await list(inPieces(bytes, 5));
  } catch (error) {
    if (error instanceof NarParseError) return error;
    throw new Error(`expected a NarParseError, got ${String(error)}`);
  }
  throw new Error('the NAR was accepted');
}

let scratch: string;
beforeAll(() => {
  requireNix();
  scratch = mkdtempSync(join(tmpdir(), 'nar-parse-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SAMPLE = nar(...dir(['a', file('hello', true)], ['b', link('a')], ['c', dir(['d', file('')])]));
const SAMPLE_LISTING = ["dir ''", "file 'a' x hello", "link 'b' -> a", "dir 'c'", "file 'c/d' "];

describe('parseNar reads what Nix writes', () => {
  it('a NAR from nix-store --dump, in any piece size', async () => {
    const root = mkdtempSync(join(scratch, 'tree-'));
    mkdirSync(join(root, 'sub/empty'), { recursive: true });
    writeFileSync(join(root, 'sub/eight'), '12345678');
    writeFileSync(join(root, 'run'), 'run me');
    chmodSync(join(root, 'run'), 0o755);
    symlinkSync('/dangling', join(root, 'link'));
    const reference = await nixDump(root);
    const expected = [
      "dir ''",
      "link 'link' -> /dangling",
      "file 'run' x run me",
      "dir 'sub'",
      "file 'sub/eight' 12345678",
      "dir 'sub/empty'",
    ];
    for (const pieceSize of [1, 3, 8, 100, reference.length]) {
      expect(await list(inPieces(reference, pieceSize)), `pieces of ${pieceSize}`).toEqual(expected);
    }
  });

  it('hand-written NARs, including a top-level file and symlink', async () => {
    expect(await list(inPieces(SAMPLE, 7))).toEqual(SAMPLE_LISTING);
    expect(await list(inPieces(nar(...file('top')), 7))).toEqual(["file '' top"]);
    expect(await list(inPieces(nar(...link('/x')), 7))).toEqual(["link '' -> /x"]);
  });

  it('skips contents the consumer did not read, and refuses to read them later', async () => {
    const entries: NarEntry[] = [];
    for await (const entry of parseNar(inPieces(SAMPLE, 3))) entries.push(entry);
    expect(entries.map((entry) => entry.path)).toEqual(['', 'a', 'b', 'c', 'c/d']);
    const first = entries[1]!;
    if (first.type !== 'regular') throw new Error('expected a file');
    await expect(
      (async () => {
        for await (const piece of first.contents) void piece;
      })(),
    ).rejects.toThrow(/read after the NAR parser moved past them/);
  });
});

describe('parseNar rejects anything but a canonical NAR with NarParseError', () => {
  it('truncated at every offset', async () => {
    for (let length = 0; length < SAMPLE.length; length++) {
      const error = await parseError(SAMPLE.subarray(0, length));
      expect(error.message, `cut at ${length}`).toMatch(/unexpected end of NAR .*\(truncated\)/);
    }
  });

  it('bad magic, and a compressed NAR handed over by mistake', async () => {
    const bad = Buffer.concat([str('nix-archive-2'), SAMPLE.subarray(str('nix-archive-1').length)]);
    expect((await parseError(bad)).message).toBe("NAR byte 0: expected 'nix-archive-1' (the NAR magic), got 'nix-archive-2'");
    expect((await parseError(Buffer.from('28b52ffd0458ffffffffffff', 'hex'))).message).toMatch(/^NAR byte 0: .*impossibly large/);
  });

  it('directory entries out of order, saying where', async () => {
    const bytes = nar(...dir(['c', file('1')], ['b', file('2')]));
    const error = await parseError(bytes);
    expect(error.message).toMatch(/^NAR byte \d+: directory entries out of order: 'b' after 'c'$/);
    expect(bytes.subarray(error.offset, error.offset + 16).equals(str('b'))).toBe(true);
    // Raw byte order, not locale order: 'B' < '_' < 'a' < 'é'.
    await expect(list(inPieces(nar(...dir(['B', file('')], ['_', file('')], ['a', file('')], ['é', file('')])), 64))).resolves.toHaveLength(
      5,
    );
    expect((await parseError(nar(...dir(['a', file('')], ['B', file('')])))).message).toMatch(/out of order: 'B' after 'a'/);
  });

  it('duplicate directory entries', async () => {
    expect((await parseError(nar(...dir(['a', file('1')], ['a', file('2')])))).message).toMatch(/duplicate directory entry 'a'/);
  });

  it('invalid names: empty, ., .., with a slash or a NUL', async () => {
    for (const [name, problem] of [
      ['', /empty entry name/],
      ['.', /entry name '\.'/],
      ['..', /entry name '\.\.'/],
      ['a/b', /contains '\/'/],
      ['a\0b', /NUL/],
    ] as const) {
      expect((await parseError(nar(...dir([name, file('x')])))).message, JSON.stringify(name)).toMatch(problem);
    }
  });

  it('nonzero padding, in a string and after contents', async () => {
    const inName = nar(...dir(['abc', file('x')]));
    const nameAt = inName.indexOf(str('abc'));
    inName[nameAt + 8 + 4] = 1;
    expect((await parseError(inName)).message).toMatch(/nonzero padding/);
    const inContents = nar(...file('abc'));
    inContents[inContents.indexOf(str('abc')) + 8 + 3] = 0xff;
    expect((await parseError(inContents)).message).toMatch(/nonzero padding/);
  });

  it('trailing bytes after the root node', async () => {
    const error = await parseError(Buffer.concat([SAMPLE, Buffer.alloc(1)]));
    expect(error.message).toBe(`NAR byte ${SAMPLE.length}: trailing bytes after the end of the NAR`);
    await parseError(Buffer.concat([SAMPLE, SAMPLE]));
  });

  it('fields out of canonical order, unknown types and fields, bad markers', async () => {
    const cases: [Buffer, RegExp][] = [
      [nar('(', 'type', 'regular', 'contents', 'x', 'executable', '', ')'), /expected '\)' closing ''/],
      [nar('(', 'type', 'regular', 'executable', 'yes', 'contents', 'x', ')'), /expected the empty value of the executable marker/],
      [nar('(', 'type', 'fifo', ')'), /unknown node type 'fifo'/],
      [nar('(', 'target', 'x', ')'), /expected 'type'/],
      [nar(...dir(['a', file('x')]).slice(0, -1), 'bogus'), /expected 'entry' or '\)'/],
      [nar(...link('')), /empty target/],
      [nar(...link('a\0b')), /target contains a NUL/],
      [nar(...dir(['a', file('x')]), ')'), /trailing bytes/],
    ];
    for (const [bytes, problem] of cases) expect((await parseError(bytes)).message).toMatch(problem);
  });

  it('absurd lengths, before allocating anything', async () => {
    const huge = Buffer.concat([
      str('nix-archive-1'),
      str('('),
      str('type'),
      str('regular'),
      str('contents'),
      Buffer.from('ffffffffffffff7f', 'hex'),
    ]);
    expect((await parseError(huge)).message).toMatch(/file size is impossibly large/);
    const longName = Buffer.concat([
      str('nix-archive-1'),
      ...dir().slice(0, -1).map(str),
      str('entry'),
      str('('),
      str('name'),
      Buffer.from('0000100000000000', 'hex'),
    ]);
    expect((await parseError(longName)).message).toMatch(/entry name is 1048576 bytes long/);
  });
});

describe('NarParser, the push parser under parseNar', () => {
  function events(bytes: Buffer, pieceSize: number, reuse: boolean): string[] {
    const seen: string[] = [];
    let contents: Buffer[] = [];
    const flush = (): void => {
      if (contents.length > 0) seen.push(`contents ${Buffer.concat(contents).toString()}`);
      contents = [];
    };
    const parser = new NarParser({
      directory: (rawPath) => (flush(), seen.push(`dir '${rawPath}'`)),
      symlink: (rawPath, target) => (flush(), seen.push(`link '${rawPath}' -> ${target}`)),
      regular: (rawPath, executable, size) => (flush(), seen.push(`file '${rawPath}'${executable ? ' x' : ''} ${size}`)),
      // A piece is only valid during the call: copied here.
      contents: (piece) => contents.push(Buffer.from(piece)),
    });
    // One scratch buffer for every piece, overwritten after each write: the parser keeps nothing of it.
    const scratch = Buffer.alloc(pieceSize);
    for (let offset = 0; offset < bytes.length; offset += pieceSize) {
      const piece = bytes.subarray(offset, offset + pieceSize);
      if (!reuse) {
        parser.write(piece);
        continue;
      }
      piece.copy(scratch);
      parser.write(scratch.subarray(0, piece.length));
      scratch.fill(0xaa);
    }
    parser.end();
    flush();
    return seen;
  }

  it('reports every node in order, with paths and contents, whatever the chunks and however they are reused', () => {
    const expected = [
      "dir ''",
      "file 'a' x 5",
      'contents hello',
      "link 'b' -> a",
      "dir 'c'",
      "file 'c/d' 0",
      "dir 'c/e'",
      "file 'c/e/f' 11",
      'contents deeper file',
    ];
    const bytes = nar(
      ...dir(['a', file('hello', true)], ['b', link('a')], ['c', dir(['d', file('')], ['e', dir(['f', file('deeper file')])])]),
    );
    for (const pieceSize of [1, 2, 7, 8, 13, 64, bytes.length]) {
      expect(events(bytes, pieceSize, false), `pieces of ${pieceSize}`).toEqual(expected);
      expect(events(bytes, pieceSize, true), `reused pieces of ${pieceSize}`).toEqual(expected);
    }
  });

  it('without a listener, only checks; after the first error every call throws it again', () => {
    const checker = new NarParser();
    checker.write(SAMPLE);
    checker.end();
    const bad = nar(...dir(['b', file('1')], ['a', file('2')]));
    const parser = new NarParser();
    let first: unknown;
    try {
      parser.write(bad);
    } catch (error) {
      first = error;
    }
    expect(first).toBeInstanceOf(NarParseError);
    expect((first as NarParseError).what).toBe("directory entries out of order: 'a' after 'b'");
    expect(() => parser.write(Buffer.alloc(8))).toThrow(first as Error);
    expect(() => parser.end()).toThrow(first as Error);
  });

  it('a directory path in an error is put together from the names around it', () => {
    const bytes = nar(...dir(['x', dir(['y', dir(['z', file('1')], ['z', file('2')])])]));
    expect(() => events(bytes, 3, true)).toThrow(/duplicate directory entry 'z'/);
    const badName = nar(...dir(['x', dir(['y', dir(['.', file('1')])])]));
    expect(() => events(badName, 5, true)).toThrow(/invalid entry name '\.' in 'x\/y'$/);
  });
});
