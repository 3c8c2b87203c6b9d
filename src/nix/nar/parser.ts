import { NAR_MAGIC, paddingLength } from './wire.js';

// NAR bytes pushed in chunks of any size -> validated events, synchronously: the one grammar
// behind both `parseNar` (entries as an async stream) and checks that only need to know a NAR is
// whole and canonical (verify, on a worker, at the speed of sha256). Stricter than Nix 2.8's own
// reader on purpose: we accept only the canonical form that `nix-store --dump` writes (fixed
// field order, sorted unique names, zero padding, nothing after the root), because a NAR is
// trusted by its hash and a second spelling of a tree would be a second hash for it.

/** What is wrong with a NAR and where: `NAR byte 1234: directory entries out of order: …`. */
export class NarParseError extends Error {
  readonly offset: number;
  /** The message without the offset. */
  readonly what: string;

  constructor(offset: number, what: string) {
    super(`NAR byte ${offset}: ${what}`);
    this.name = 'NarParseError';
    this.offset = offset;
    this.what = what;
  }
}

/**
 * What the parser found, in NAR order (a directory before what it holds). Paths are raw bytes
 * joined with '/', empty for the root; they and symlink targets are the listener's to keep. A
 * contents piece is a view of the chunk being written: valid only during the call.
 */
export interface NarListener {
  directory?(rawPath: Buffer): void;
  symlink?(rawPath: Buffer, rawTarget: Buffer): void;
  /** A regular file starts; `size` bytes of contents follow in `contents` calls. */
  regular?(rawPath: Buffer, executable: boolean, size: number): void;
  contents?(piece: Buffer): void;
}

// Far above anything real (Linux: 255-byte names, 4096-byte paths), low enough that a corrupt
// length is an error and not a huge allocation.
const MAX_TOKEN_LENGTH = 64;
const MAX_NAME_LENGTH = 4096;
const MAX_TARGET_LENGTH = 65536;
// The largest u64 a JS number holds exactly; a length beyond it is corruption, not a real file.
const MAX_HIGH_WORD = 0x1f_ffff;
const SLASH = 0x2f;
const EMPTY = Buffer.alloc(0);
const DIRECTORY = Buffer.from('directory');
const REGULAR = Buffer.from('regular');
const SYMLINK = Buffer.from('symlink');
const EXECUTABLE = Buffer.from('executable');
const CONTENTS = Buffer.from('contents');
const ENTRY = Buffer.from('entry');
const CLOSE_PAREN = Buffer.from(')');

/** A short quoted rendering of untrusted bytes for error messages. */
function quote(bytes: Buffer): string {
  const text = bytes.subarray(0, 80).toString('utf8');
  return `'${text}${bytes.length > 80 ? '…' : ''}'`;
}

/** Nix's rule for entry names, checked byte-wise. */
function checkName(name: Buffer): string | undefined {
  if (name.length === 0) return 'empty entry name';
  if (name.length === 1 && name[0] === 0x2e) return "entry name '.'";
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "entry name '..'";
  if (name.includes(SLASH)) return `entry name ${quote(name)} contains '/'`;
  if (name.includes(0)) return `entry name ${quote(name)} contains a NUL byte`;
  return undefined;
}

/** The u64 at `at`, or -1 when it is beyond what a JS number holds exactly. */
function readLength(bytes: Buffer, at: number): number {
  const low = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  const high = (bytes[at + 4]! | (bytes[at + 5]! << 8) | (bytes[at + 6]! << 16) | (bytes[at + 7]! << 24)) >>> 0;
  return high > MAX_HIGH_WORD ? -1 : high * 0x1_0000_0000 + low;
}

function isZero(bytes: Buffer, at: number, count: number): boolean {
  for (let index = at; index < at + count; index++) if (bytes[index] !== 0) return false;
  return true;
}

function bytesEqual(bytes: Buffer, at: number, length: number, expected: Buffer): boolean {
  if (length !== expected.length) return false;
  for (let index = 0; index < length; index++) if (bytes[at + index] !== expected[index]) return false;
  return true;
}

// Where the parser is in the grammar (wire.ts). The states up to NODE_KEYWORD each read one
// string: a fixed token (KEYWORD) or a value of at most MAX_VALUE_LENGTH bytes.
const MAGIC = 0;
const OPEN = 1;
const TYPE_KEYWORD = 2;
const TYPE = 3;
const REGULAR_TAG = 4;
const EXECUTABLE_VALUE = 5;
const CONTENTS_KEYWORD = 6;
const TARGET_KEYWORD = 7;
const TARGET = 8;
const CLOSE = 9;
const ENTRY_CLOSE = 10;
const DIRECTORY_TAG = 11;
const ENTRY_OPEN = 12;
const NAME_KEYWORD = 13;
const NAME = 14;
const NODE_KEYWORD = 15;
const SIZE = 16;
const CONTENTS_BYTES = 17;
const CONTENTS_PADDING = 18;
const END = 19;

const KEYWORD: Array<Buffer | undefined> = [];
KEYWORD[MAGIC] = Buffer.from(NAR_MAGIC);
KEYWORD[OPEN] = Buffer.from('(');
KEYWORD[TYPE_KEYWORD] = Buffer.from('type');
KEYWORD[EXECUTABLE_VALUE] = EMPTY;
KEYWORD[TARGET_KEYWORD] = Buffer.from('target');
KEYWORD[CLOSE] = CLOSE_PAREN;
KEYWORD[ENTRY_CLOSE] = CLOSE_PAREN;
KEYWORD[ENTRY_OPEN] = Buffer.from('(');
KEYWORD[NAME_KEYWORD] = Buffer.from('name');
KEYWORD[NODE_KEYWORD] = Buffer.from('node');

const MAX_VALUE_LENGTH: number[] = [];
MAX_VALUE_LENGTH[TYPE] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[REGULAR_TAG] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[CONTENTS_KEYWORD] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[DIRECTORY_TAG] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[NAME] = MAX_NAME_LENGTH;
MAX_VALUE_LENGTH[TARGET] = MAX_TARGET_LENGTH;

/** An open directory: the last entry name read in it, kept to check the next is greater. */
interface DirectoryFrame {
  name: Buffer;
  nameLength: number;
  hasName: boolean;
}

/**
 * A push parser: `write` each chunk as it arrives, `end` after the last. Both throw
 * NarParseError at the first thing that is wrong, and every call after that throws it again.
 * Nothing of a written chunk is kept after `write` returns (a string split between two chunks
 * is copied), so the caller may reuse its buffers. Paths are put together only for a listener
 * that wants them and for error messages.
 */
export class NarParser {
  private state = MAGIC;
  /** Offset in the NAR of the next byte not yet consumed. */
  private position = 0;
  private received = 0;
  private chunk: Buffer = EMPTY;
  private offset = 0;
  /** A piece split between chunks, assembled here. */
  private pending: Buffer = Buffer.alloc(64);
  private pendingLength = 0;
  /** Where `take` left the piece it returned: `bytes[at]` on, in the chunk or in `pending`. */
  private bytes: Buffer = EMPTY;
  private at = 0;
  // The string being read: its length, then its bytes (a value is copied to `value`), then its
  // padding.
  private stringPhase: 'length' | 'bytes' | 'padding' = 'length';
  private stringStart = 0;
  private stringLength = 0;
  private value: Buffer = Buffer.alloc(64);
  /** Open directories, outermost first; frames past `depth` are kept for reuse. */
  private readonly frames: DirectoryFrame[] = [];
  private depth = 0;
  // The regular file being read.
  private executable = false;
  private size = 0;
  private remaining = 0;
  private failure: NarParseError | undefined;

  constructor(private readonly listener: NarListener = {}) {}

  write(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    this.chunk = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.offset = 0;
    this.received += chunk.length;
    try {
      while (this.offset < this.chunk.length) this.step();
    } catch (error) {
      if (error instanceof NarParseError) this.failure = error;
      throw error;
    } finally {
      this.chunk = EMPTY;
      this.bytes = EMPTY;
    }
  }

  /** The NAR is complete: anything still expected makes it truncated. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.state === END) return;
    this.failure = new NarParseError(this.received, `unexpected end of NAR in ${this.expected()} (truncated)`);
    throw this.failure;
  }

  /**
   * The path of the node at `depth` (0 is the root): its ancestors' names joined with '/'. The
   * node being read is at `this.depth`, an open directory's own frame at its depth.
   */
  private pathAt(depth: number): Buffer {
    const parts: Buffer[] = [];
    for (let index = 0; index < depth; index++) {
      const frame = this.frames[index]!;
      if (index > 0) parts.push(Buffer.of(SLASH));
      parts.push(frame.name.subarray(0, frame.nameLength));
    }
    return Buffer.concat(parts);
  }

  private pathText(depth = this.depth): string {
    return this.pathAt(depth).toString('utf8');
  }

  /** What the parser is in the middle of reading, for a truncation message. */
  private expected(): string {
    switch (this.state) {
      case SIZE:
        return 'file size';
      case CONTENTS_BYTES:
        return 'file contents';
      case CONTENTS_PADDING:
        return 'padding';
      default:
        if (this.stringPhase === 'length') return `length of ${this.describe()}`;
        return this.stringPhase === 'bytes' ? this.describe() : 'padding';
    }
  }

  /** The string the current state reads, as error messages name it. */
  private describe(): string {
    switch (this.state) {
      case MAGIC:
        return `'${NAR_MAGIC}' (the NAR magic)`;
      case TYPE:
        return 'node type';
      case REGULAR_TAG:
        return "'executable' or 'contents'";
      case EXECUTABLE_VALUE:
        return 'the empty value of the executable marker';
      case CONTENTS_KEYWORD:
        return "'contents'";
      case TARGET:
        return 'symlink target';
      case CLOSE:
        return `')' closing '${this.pathText()}'`;
      case ENTRY_CLOSE:
        return `')' closing the entry '${this.pathText()}'`;
      case DIRECTORY_TAG:
        return "'entry' or ')'";
      case NAME:
        return 'entry name';
      default:
        return `'${KEYWORD[this.state]!.toString('latin1')}'`;
    }
  }

  /**
   * Makes the next `count` bytes readable at `bytes[at]`, or returns false when the chunk ends
   * first (what it had is kept, and the rest comes with the next chunk). Use them at once: the
   * next `take` may overwrite them.
   */
  private take(count: number): boolean {
    const available = this.chunk.length - this.offset;
    if (this.pendingLength === 0 && available >= count) {
      this.bytes = this.chunk;
      this.at = this.offset;
      this.offset += count;
      this.position += count;
      return true;
    }
    if (this.pending.length < count) {
      const larger = Buffer.alloc(Math.max(count, this.pending.length * 2));
      this.pending.copy(larger, 0, 0, this.pendingLength);
      this.pending = larger;
    }
    const copied = this.chunk.copy(
      this.pending,
      this.pendingLength,
      this.offset,
      this.offset + Math.min(available, count - this.pendingLength),
    );
    this.pendingLength += copied;
    this.offset += copied;
    if (this.pendingLength < count) return false;
    this.pendingLength = 0;
    this.position += count;
    this.bytes = this.pending;
    this.at = 0;
    return true;
  }

  private step(): void {
    switch (this.state) {
      case CONTENTS_BYTES: {
        const count = Math.min(this.remaining, this.chunk.length - this.offset);
        const start = this.offset;
        this.offset += count;
        this.position += count;
        this.remaining -= count;
        if (this.listener.contents) this.listener.contents(this.chunk.subarray(start, start + count));
        if (this.remaining === 0) this.endContents();
        return;
      }
      case CONTENTS_PADDING: {
        const start = this.position;
        const count = paddingLength(this.size);
        if (!this.take(count)) return;
        if (!isZero(this.bytes, this.at, count)) throw new NarParseError(start, 'nonzero padding bytes');
        this.state = CLOSE;
        return;
      }
      case SIZE: {
        const start = this.position;
        if (!this.take(8)) return;
        this.size = readLength(this.bytes, this.at);
        if (this.size < 0) throw new NarParseError(start, 'file size is impossibly large');
        this.remaining = this.size;
        if (this.listener.regular) this.listener.regular(this.pathAt(this.depth), this.executable, this.size);
        this.state = CONTENTS_BYTES;
        if (this.size === 0) this.endContents();
        return;
      }
      case END:
        throw new NarParseError(this.position, 'trailing bytes after the end of the NAR');
      default:
        if (this.readString()) this.accept();
    }
  }

  private endContents(): void {
    this.state = paddingLength(this.size) > 0 ? CONTENTS_PADDING : CLOSE;
  }

  /**
   * Reads the current state's string; true once it is all in. A fixed token is checked as soon
   * as its bytes are in, before its padding; a value is copied to `value` and acted on (by
   * `accept`) only after its padding is in and checked.
   */
  private readString(): boolean {
    if (this.stringPhase === 'length') {
      this.stringStart = this.position;
      if (!this.take(8)) return false;
      const length = readLength(this.bytes, this.at);
      if (length < 0) throw new NarParseError(this.stringStart, `length of ${this.describe()} is impossibly large`);
      const keyword = KEYWORD[this.state];
      const maxLength = keyword ? MAX_TOKEN_LENGTH : MAX_VALUE_LENGTH[this.state]!;
      if (length > maxLength) {
        throw new NarParseError(
          this.stringStart,
          keyword
            ? `expected ${this.describe()}, got a ${length}-byte string`
            : `${this.describe()} is ${length} bytes long, more than the ${maxLength} allowed`,
        );
      }
      this.stringLength = length;
      this.stringPhase = 'bytes';
    }
    if (this.stringPhase === 'bytes') {
      const length = this.stringLength;
      if (!this.take(length)) return false;
      const keyword = KEYWORD[this.state];
      if (keyword) {
        if (!bytesEqual(this.bytes, this.at, length, keyword)) {
          const got = this.bytes.toString('utf8', this.at, this.at + length);
          throw new NarParseError(this.stringStart, `expected ${this.describe()}, got '${got}'`);
        }
      } else {
        if (this.value.length < length) this.value = Buffer.alloc(Math.max(length, this.value.length * 2));
        // Most values are a few bytes: a loop beats Buffer#copy's call overhead.
        if (length <= 64) for (let index = 0; index < length; index++) this.value[index] = this.bytes[this.at + index]!;
        else this.bytes.copy(this.value, 0, this.at, this.at + length);
      }
      this.stringPhase = 'padding';
    }
    const paddingStart = this.position;
    const count = paddingLength(this.stringLength);
    if (!this.take(count)) return false;
    if (!isZero(this.bytes, this.at, count)) throw new NarParseError(paddingStart, 'nonzero padding bytes');
    this.stringPhase = 'length';
    return true;
  }

  private valueIs(expected: Buffer): boolean {
    return bytesEqual(this.value, 0, this.stringLength, expected);
  }

  /** The value just read, as a buffer of its own. */
  private valueCopy(): Buffer {
    const copy = Buffer.allocUnsafe(this.stringLength);
    this.value.copy(copy, 0, 0, this.stringLength);
    return copy;
  }

  /** A whole string of the current state is in: act on it and move on. */
  private accept(): void {
    const start = this.stringStart;
    switch (this.state) {
      case MAGIC:
        this.state = OPEN;
        return;
      case OPEN:
        this.state = TYPE_KEYWORD;
        return;
      case TYPE_KEYWORD:
        this.state = TYPE;
        return;
      case TYPE:
        if (this.valueIs(DIRECTORY)) {
          if (this.listener.directory) this.listener.directory(this.pathAt(this.depth));
          this.openDirectory();
          this.state = DIRECTORY_TAG;
        } else if (this.valueIs(REGULAR)) {
          this.executable = false;
          this.state = REGULAR_TAG;
        } else if (this.valueIs(SYMLINK)) {
          this.state = TARGET_KEYWORD;
        } else {
          throw new NarParseError(start, `unknown node type ${quote(this.valueCopy())}`);
        }
        return;
      case REGULAR_TAG:
      case CONTENTS_KEYWORD:
        if (this.state === REGULAR_TAG && this.valueIs(EXECUTABLE)) {
          this.executable = true;
          this.state = EXECUTABLE_VALUE;
        } else if (this.valueIs(CONTENTS)) {
          this.state = SIZE;
        } else {
          throw new NarParseError(start, `expected 'contents' for file '${this.pathText()}', got ${quote(this.valueCopy())}`);
        }
        return;
      case EXECUTABLE_VALUE:
        this.state = CONTENTS_KEYWORD;
        return;
      case TARGET_KEYWORD:
        this.state = TARGET;
        return;
      case TARGET: {
        const target = this.value.subarray(0, this.stringLength);
        // Nix could never dump these (the kernel refuses them), so only a forged NAR has them.
        if (target.length === 0) throw new NarParseError(start, `symlink '${this.pathText()}' has an empty target`);
        if (target.includes(0)) throw new NarParseError(start, `symlink '${this.pathText()}' target contains a NUL byte`);
        if (this.listener.symlink) this.listener.symlink(this.pathAt(this.depth), this.valueCopy());
        this.state = CLOSE;
        return;
      }
      case CLOSE:
        this.state = this.depth === 0 ? END : ENTRY_CLOSE;
        return;
      case ENTRY_CLOSE:
        this.state = DIRECTORY_TAG;
        return;
      case DIRECTORY_TAG:
        if (this.valueIs(ENTRY)) {
          this.state = ENTRY_OPEN;
        } else if (this.valueIs(CLOSE_PAREN)) {
          // The directory is closed; what follows closes the entry that held it, if any.
          this.depth--;
          this.state = this.depth === 0 ? END : ENTRY_CLOSE;
        } else {
          throw new NarParseError(
            start,
            `expected 'entry' or ')' in directory '${this.pathText(this.depth - 1)}', got ${quote(this.valueCopy())}`,
          );
        }
        return;
      case ENTRY_OPEN:
        this.state = NAME_KEYWORD;
        return;
      case NAME_KEYWORD:
        this.state = NAME;
        return;
      case NAME:
        this.acceptName(start);
        this.state = NODE_KEYWORD;
        return;
      case NODE_KEYWORD:
        this.state = OPEN;
        return;
      default:
        throw new Error(`NarParser: no string is read in state ${this.state}`);
    }
  }

  /**
   * A directory node was read: its frame opens, and the node being read is now its entries'
   * (depth counts the directories around the node being read).
   */
  private openDirectory(): void {
    let frame = this.frames[this.depth];
    if (!frame) this.frames.push((frame = { name: Buffer.alloc(64), nameLength: 0, hasName: false }));
    frame.hasName = false;
    this.depth++;
  }

  /** An entry's name, checked and kept as the directory's last, which also makes it part of the path. */
  private acceptName(start: number): void {
    const frame = this.frames[this.depth - 1]!;
    const length = this.stringLength;
    const name = this.value.subarray(0, length);
    const problem = checkName(name);
    if (problem) throw new NarParseError(start, `invalid ${problem} in '${this.pathText(this.depth - 1)}'`);
    if (frame.hasName) {
      const order = frame.name.compare(name, 0, length, 0, frame.nameLength);
      if (order >= 0) {
        const previous = Buffer.from(frame.name.subarray(0, frame.nameLength));
        const what =
          order === 0
            ? `duplicate directory entry ${quote(name)}`
            : `directory entries out of order: ${quote(Buffer.from(name))} after ${quote(previous)}`;
        throw new NarParseError(start, what);
      }
    }
    if (frame.name.length < length) frame.name = Buffer.alloc(Math.max(length, frame.name.length * 2));
    this.value.copy(frame.name, 0, 0, length);
    frame.nameLength = length;
    frame.hasName = true;
  }
}
