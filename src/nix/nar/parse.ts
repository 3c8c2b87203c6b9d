import { NarByteReader, NarParseError } from './reader.js';
import { NAR_MAGIC, paddingLength } from './wire.js';

export { NarParseError } from './reader.js';

// NAR byte stream -> validated entries, in the order they appear (a directory before what it
// holds). Stricter than Nix 2.8's own reader on purpose: we accept only the canonical form that
// `nix-store --dump` writes (fixed field order, sorted unique names, zero padding, nothing after
// the root), because a NAR is trusted by its hash and a second spelling of a tree would be a
// second hash for it.

interface EntryBase {
  /** Path inside the NAR joined with '/', '' for the root; names decoded as UTF-8 for display. */
  path: string;
  /** The same path as raw bytes: names need not be UTF-8, and restoring must be exact. */
  rawPath: Buffer;
}

export interface NarDirectory extends EntryBase {
  type: 'directory';
}

export interface NarSymlink extends EntryBase {
  type: 'symlink';
  target: string;
  rawTarget: Buffer;
}

export interface NarRegularFile extends EntryBase {
  type: 'regular';
  executable: boolean;
  size: number;
  /**
   * The file's bytes, streamed (never held whole). Read it before asking the parser for the next
   * entry; whatever is left unread then is skipped, and reading it later throws.
   */
  contents: AsyncIterable<Buffer>;
}

export type NarEntry = NarDirectory | NarSymlink | NarRegularFile;

// Far above anything real (Linux: 255-byte names, 4096-byte paths), low enough that a corrupt
// length is an error and not a huge allocation.
const MAX_TOKEN_LENGTH = 64;
const MAX_NAME_LENGTH = 4096;
const MAX_TARGET_LENGTH = 65536;
const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);

/** A short quoted rendering of untrusted bytes for error messages. */
function quote(bytes: Buffer): string {
  const text = bytes.subarray(0, 80).toString('utf8');
  return `'${text}${bytes.length > 80 ? '…' : ''}'`;
}

function joinPath(parent: Buffer, name: Buffer): Buffer {
  return parent.length === 0 ? name : Buffer.concat([parent, SLASH, name]);
}

/** Nix's rule for entry names, checked byte-wise. */
function checkName(name: Buffer): string | undefined {
  if (name.length === 0) return 'empty entry name';
  if (name.length === 1 && name[0] === 0x2e) return "entry name '.'";
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "entry name '..'";
  if (name.includes(0x2f)) return `entry name ${quote(name)} contains '/'`;
  if (name.includes(0)) return `entry name ${quote(name)} contains a NUL byte`;
  return undefined;
}

interface DirectoryFrame {
  rawPath: Buffer;
  previousName: Buffer | undefined;
}

export async function* parseNar(source: AsyncIterable<Uint8Array>): AsyncGenerator<NarEntry> {
  const reader = new NarByteReader(source);
  try {
    await reader.expectToken(NAR_MAGIC, `'${NAR_MAGIC}' (the NAR magic)`);
    const stack: DirectoryFrame[] = [];
    let rawPath: Buffer = EMPTY;
    for (;;) {
      // One node at rawPath.
      await reader.expectToken('(');
      await reader.expectToken('type');
      const typeOffset = reader.position;
      const type = (await reader.readString(MAX_TOKEN_LENGTH, 'node type')).toString('latin1');
      const path = rawPath.toString('utf8');
      if (type === 'directory') {
        yield { type: 'directory', path, rawPath };
        stack.push({ rawPath, previousName: undefined });
      } else {
        if (type === 'regular') {
          yield* parseRegularBody(reader, path, rawPath);
        } else if (type === 'symlink') {
          await reader.expectToken('target');
          const targetOffset = reader.position;
          const rawTarget = await reader.readString(MAX_TARGET_LENGTH, 'symlink target');
          // Nix could never dump these (the kernel refuses them), so only a forged NAR has them.
          if (rawTarget.length === 0) throw new NarParseError(targetOffset, `symlink '${path}' has an empty target`);
          if (rawTarget.includes(0)) throw new NarParseError(targetOffset, `symlink '${path}' target contains a NUL byte`);
          yield { type: 'symlink', path, rawPath, target: rawTarget.toString('utf8'), rawTarget };
        } else {
          throw new NarParseError(typeOffset, `unknown node type ${quote(Buffer.from(type, 'latin1'))}`);
        }
        await reader.expectToken(')', `')' closing '${path}'`);
        if (stack.length === 0) break;
        await reader.expectToken(')', `')' closing the entry '${path}'`);
      }

      // Inside a directory: the next entry, or the end of this directory (and maybe of its parents).
      let next: Buffer | undefined;
      while (!next && stack.length > 0) {
        const frame = stack[stack.length - 1]!;
        const tagOffset = reader.position;
        const tag = (await reader.readString(MAX_TOKEN_LENGTH, "'entry' or ')'")).toString('latin1');
        if (tag === 'entry') {
          await reader.expectToken('(');
          await reader.expectToken('name');
          const nameOffset = reader.position;
          const name = await reader.readString(MAX_NAME_LENGTH, 'entry name');
          const problem = checkName(name);
          if (problem) throw new NarParseError(nameOffset, `invalid ${problem} in '${frame.rawPath.toString('utf8')}'`);
          if (frame.previousName && Buffer.compare(frame.previousName, name) >= 0) {
            const what = frame.previousName.equals(name)
              ? `duplicate directory entry ${quote(name)}`
              : `directory entries out of order: ${quote(name)} after ${quote(frame.previousName)}`;
            throw new NarParseError(nameOffset, what);
          }
          frame.previousName = name;
          await reader.expectToken('node');
          next = joinPath(frame.rawPath, name);
        } else if (tag === ')') {
          stack.pop();
          if (stack.length > 0) await reader.expectToken(')', `')' closing the entry '${frame.rawPath.toString('utf8')}'`);
        } else {
          throw new NarParseError(
            tagOffset,
            `expected 'entry' or ')' in directory '${frame.rawPath.toString('utf8')}', got ${quote(Buffer.from(tag, 'latin1'))}`,
          );
        }
      }
      if (!next) break;
      rawPath = next;
    }
    await reader.expectEnd();
  } finally {
    await reader.close();
  }
}

/** After `type regular`: optional executable marker, then the contents, streamed. */
async function* parseRegularBody(reader: NarByteReader, path: string, rawPath: Buffer): AsyncGenerator<NarRegularFile> {
  let tagOffset = reader.position;
  let tag = (await reader.readString(MAX_TOKEN_LENGTH, "'executable' or 'contents'")).toString('latin1');
  let executable = false;
  if (tag === 'executable') {
    executable = true;
    await reader.expectToken('', 'the empty value of the executable marker');
    tagOffset = reader.position;
    tag = (await reader.readString(MAX_TOKEN_LENGTH, "'contents'")).toString('latin1');
  }
  if (tag !== 'contents')
    throw new NarParseError(tagOffset, `expected 'contents' for file '${path}', got ${quote(Buffer.from(tag, 'latin1'))}`);
  const size = await reader.readLength('file size');

  const state = { remaining: size, done: false };
  async function* contents(): AsyncGenerator<Buffer> {
    while (state.remaining > 0 || state.done) {
      if (state.done) throw new Error(`the contents of '${path}' were read after the NAR parser moved past them`);
      const piece = await reader.readUpTo(state.remaining);
      state.remaining -= piece.length;
      yield piece;
    }
  }
  yield { type: 'regular', path, rawPath, executable, size, contents: contents() };
  state.done = true;
  await reader.skip(state.remaining);
  state.remaining = 0;
  await reader.expectPadding(paddingLength(size));
}
