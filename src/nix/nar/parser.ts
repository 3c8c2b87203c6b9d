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
const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);
const DIRECTORY = Buffer.from('directory');
const REGULAR = Buffer.from('regular');
const SYMLINK = Buffer.from('symlink');
const EXECUTABLE = Buffer.from('executable');
const CONTENTS = Buffer.from('contents');
const ENTRY = Buffer.from('entry');
const CLOSE = Buffer.from(')');

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

/** The u64 at `at`, or -1 when it is beyond what a JS number holds exactly. */
function readLength(bytes: Buffer, at: number): number {
  const high = bytes.readUInt32LE(at + 4);
  return high > MAX_HIGH_WORD ? -1 : high * 0x1_0000_0000 + bytes.readUInt32LE(at);
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

/**
 * Where the parser is in the grammar (wire.ts). Each state but `size`, `contents`,
 * `contents-padding` and `end` reads one string: a fixed token (KEYWORDS) or a value.
 */
type State =
  | 'magic'
  | 'open'
  | 'type-keyword'
  | 'type'
  | 'regular-tag'
  | 'executable-value'
  | 'contents-keyword'
  | 'size'
  | 'contents'
  | 'contents-padding'
  | 'target-keyword'
  | 'target'
  | 'close'
  | 'entry-close'
  | 'directory-tag'
  | 'entry-open'
  | 'name-keyword'
  | 'name'
  | 'node-keyword'
  | 'end';

const KEYWORDS = new Map<State, Buffer>([
  ['magic', Buffer.from(NAR_MAGIC)],
  ['open', Buffer.from('(')],
  ['type-keyword', Buffer.from('type')],
  ['executable-value', EMPTY],
  ['target-keyword', Buffer.from('target')],
  ['close', Buffer.from(')')],
  ['entry-close', Buffer.from(')')],
  ['entry-open', Buffer.from('(')],
  ['name-keyword', Buffer.from('name')],
  ['node-keyword', Buffer.from('node')],
]);

const MAX_VALUE_LENGTH = new Map<State, number>([
  ['type', MAX_TOKEN_LENGTH],
  ['regular-tag', MAX_TOKEN_LENGTH],
  ['contents-keyword', MAX_TOKEN_LENGTH],
  ['directory-tag', MAX_TOKEN_LENGTH],
  ['name', MAX_NAME_LENGTH],
  ['target', MAX_TARGET_LENGTH],
]);

interface DirectoryFrame {
  rawPath: Buffer;
  previousName: Buffer | undefined;
}

/**
 * A push parser: `write` each chunk as it arrives, `end` after the last. Both throw
 * NarParseError at the first thing that is wrong, and every call after that throws it again.
 * Nothing of a written chunk is kept after `write` returns (a string split between two chunks
 * is copied), so the caller may reuse its buffers.
 */
export class NarParser {
  private state: State = 'magic';
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
  // The node being read.
  private readonly stack: DirectoryFrame[] = [];
  private rawPath: Buffer = EMPTY;
  private executable = false;
  private size = 0;
  private remaining = 0;
  /** The node whose closing ')' is expected next, for the message when it is not there. */
  private closing: Buffer = EMPTY;
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
    if (this.state === 'end') return;
    this.failure = new NarParseError(this.received, `unexpected end of NAR in ${this.expected()} (truncated)`);
    throw this.failure;
  }

  /** What the parser is in the middle of reading, for a truncation message. */
  private expected(): string {
    switch (this.state) {
      case 'size':
        return 'file size';
      case 'contents':
        return 'file contents';
      case 'contents-padding':
        return 'padding';
      default:
        if (this.stringPhase === 'length') return `length of ${this.describe()}`;
        return this.stringPhase === 'bytes' ? this.describe() : 'padding';
    }
  }

  /** The string the current state reads, as error messages name it. */
  private describe(): string {
    const path = (rawPath: Buffer): string => rawPath.toString('utf8');
    switch (this.state) {
      case 'magic':
        return `'${NAR_MAGIC}' (the NAR magic)`;
      case 'type':
        return 'node type';
      case 'regular-tag':
        return "'executable' or 'contents'";
      case 'executable-value':
        return 'the empty value of the executable marker';
      case 'contents-keyword':
        return "'contents'";
      case 'target':
        return 'symlink target';
      case 'close':
        return `')' closing '${path(this.closing)}'`;
      case 'entry-close':
        return `')' closing the entry '${path(this.closing)}'`;
      case 'directory-tag':
        return "'entry' or ')'";
      case 'name':
        return 'entry name';
      default:
        return `'${KEYWORDS.get(this.state)!.toString('latin1')}'`;
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
      case 'contents': {
        const count = Math.min(this.remaining, this.chunk.length - this.offset);
        const piece = this.chunk.subarray(this.offset, this.offset + count);
        this.offset += count;
        this.position += count;
        this.remaining -= count;
        this.listener.contents?.(piece);
        if (this.remaining === 0) this.endContents();
        return;
      }
      case 'contents-padding': {
        const start = this.position;
        const count = paddingLength(this.size);
        if (!this.take(count)) return;
        if (!isZero(this.bytes, this.at, count)) throw new NarParseError(start, 'nonzero padding bytes');
        this.state = 'close';
        return;
      }
      case 'size': {
        const start = this.position;
        if (!this.take(8)) return;
        this.size = readLength(this.bytes, this.at);
        if (this.size < 0) throw new NarParseError(start, 'file size is impossibly large');
        this.remaining = this.size;
        this.listener.regular?.(this.rawPath, this.executable, this.size);
        this.state = 'contents';
        if (this.size === 0) this.endContents();
        return;
      }
      case 'end':
        throw new NarParseError(this.position, 'trailing bytes after the end of the NAR');
      default:
        if (this.readString()) this.accept();
    }
  }

  private endContents(): void {
    this.state = paddingLength(this.size) > 0 ? 'contents-padding' : 'close';
    this.closing = this.rawPath;
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
      const keyword = KEYWORDS.get(this.state);
      const maxLength = keyword ? MAX_TOKEN_LENGTH : MAX_VALUE_LENGTH.get(this.state)!;
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
      const keyword = KEYWORDS.get(this.state);
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
    const path = (): string => this.rawPath.toString('utf8');
    switch (this.state) {
      case 'magic':
        this.state = 'open';
        return;
      case 'open':
        this.state = 'type-keyword';
        return;
      case 'type-keyword':
        this.state = 'type';
        return;
      case 'type':
        if (this.valueIs(DIRECTORY)) {
          this.listener.directory?.(this.rawPath);
          this.stack.push({ rawPath: this.rawPath, previousName: undefined });
          this.state = 'directory-tag';
        } else if (this.valueIs(REGULAR)) {
          this.executable = false;
          this.state = 'regular-tag';
        } else if (this.valueIs(SYMLINK)) {
          this.state = 'target-keyword';
        } else {
          throw new NarParseError(start, `unknown node type ${quote(this.valueCopy())}`);
        }
        return;
      case 'regular-tag':
      case 'contents-keyword':
        if (this.state === 'regular-tag' && this.valueIs(EXECUTABLE)) {
          this.executable = true;
          this.state = 'executable-value';
        } else if (this.valueIs(CONTENTS)) {
          this.state = 'size';
        } else {
          throw new NarParseError(start, `expected 'contents' for file '${path()}', got ${quote(this.valueCopy())}`);
        }
        return;
      case 'executable-value':
        this.state = 'contents-keyword';
        return;
      case 'target-keyword':
        this.state = 'target';
        return;
      case 'target': {
        const target = this.valueCopy();
        // Nix could never dump these (the kernel refuses them), so only a forged NAR has them.
        if (target.length === 0) throw new NarParseError(start, `symlink '${path()}' has an empty target`);
        if (target.includes(0)) throw new NarParseError(start, `symlink '${path()}' target contains a NUL byte`);
        this.listener.symlink?.(this.rawPath, target);
        this.closing = this.rawPath;
        this.state = 'close';
        return;
      }
      case 'close':
        this.state = this.stack.length === 0 ? 'end' : 'entry-close';
        return;
      case 'entry-close':
        this.state = 'directory-tag';
        return;
      case 'directory-tag': {
        const frame = this.stack[this.stack.length - 1]!;
        if (this.valueIs(ENTRY)) {
          this.state = 'entry-open';
        } else if (this.valueIs(CLOSE)) {
          this.stack.pop();
          this.closing = frame.rawPath;
          this.state = this.stack.length === 0 ? 'end' : 'entry-close';
        } else {
          throw new NarParseError(
            start,
            `expected 'entry' or ')' in directory '${frame.rawPath.toString('utf8')}', got ${quote(this.valueCopy())}`,
          );
        }
        return;
      }
      case 'entry-open':
        this.state = 'name-keyword';
        return;
      case 'name-keyword':
        this.state = 'name';
        return;
      case 'name': {
        const frame = this.stack[this.stack.length - 1]!;
        const name = this.valueCopy();
        const problem = checkName(name);
        if (problem) throw new NarParseError(start, `invalid ${problem} in '${frame.rawPath.toString('utf8')}'`);
        if (frame.previousName && Buffer.compare(frame.previousName, name) >= 0) {
          const what = frame.previousName.equals(name)
            ? `duplicate directory entry ${quote(name)}`
            : `directory entries out of order: ${quote(name)} after ${quote(frame.previousName)}`;
          throw new NarParseError(start, what);
        }
        frame.previousName = name;
        this.rawPath = joinPath(frame.rawPath, name);
        this.state = 'node-keyword';
        return;
      }
      case 'node-keyword':
        this.state = 'open';
        return;
      default:
        throw new Error(`NarParser: no string is read in state ${this.state}`);
    }
  }
}
