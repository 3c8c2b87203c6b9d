import { paddingLength } from './wire.js';

// The NAR wire format's framing (wire.ts), read from chunks pushed in: u64 lengths, strings with
// their zero padding, file contents. Where each string belongs in the tree is parser.ts's job.

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

/** The longest fixed token of the format, far above any real one. */
export const MAX_TOKEN_LENGTH = 64;
// The largest u64 a JS number holds exactly; a length beyond it is corruption, not a real file.
const MAX_HIGH_WORD = 0x1f_ffff;
const EMPTY = Buffer.alloc(0);

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

/**
 * Reads the framing out of one chunk at a time (`startChunk`, then reads while `hasInput`, then
 * `endChunk`). A read that needs more than the chunk holds keeps what it had and returns
 * false or undefined; it is called again with the next chunk. Nothing of a chunk is kept after
 * `endChunk` (a piece split between chunks is copied), so its memory may be reused.
 */
export class FramingReader {
  /** Offset in the NAR of the next byte not yet consumed. */
  position = 0;
  /** Bytes pushed in so far. */
  received = 0;
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
  /** Where the string being read (or last read) starts, for error messages. */
  stringStart = 0;
  private stringLength = 0;
  private value: Buffer = Buffer.alloc(64);

  startChunk(chunk: Buffer): void {
    this.chunk = chunk;
    this.offset = 0;
    this.received += chunk.length;
  }

  get hasInput(): boolean {
    return this.offset < this.chunk.length;
  }

  endChunk(): void {
    this.chunk = EMPTY;
    this.bytes = EMPTY;
  }

  /**
   * Makes the next `count` bytes readable at `bytes[at]`, or returns false when the chunk ends
   * first. Use them at once: the next `take` may overwrite them.
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

  /** A u64 (a file's size, named `what` when it is too large), or undefined until all of it is in. */
  readU64(what: string): number | undefined {
    const start = this.position;
    if (!this.take(8)) return undefined;
    const value = readLength(this.bytes, this.at);
    if (value < 0) throw new NarParseError(start, `${what} is impossibly large`);
    return value;
  }

  /** Up to `count` bytes of file contents, as much as the chunk holds: a view of it. */
  contents(count: number): Buffer {
    const start = this.offset;
    const taken = Math.min(count, this.chunk.length - start);
    this.offset += taken;
    this.position += taken;
    return this.chunk.subarray(start, start + taken);
  }

  /** The zero padding after a file's contents; false until all of it is in. */
  padding(count: number): boolean {
    const start = this.position;
    if (!this.take(count)) return false;
    if (!isZero(this.bytes, this.at, count)) throw new NarParseError(start, 'nonzero padding bytes');
    return true;
  }

  /**
   * Reads a string, true once it and its padding are in. With `keyword`, it must be that token,
   * checked as soon as its bytes are in (before its padding); otherwise it is a value of at
   * most `maxLength` bytes, then in `value`. `describe` names it in error messages.
   */
  readString(keyword: Buffer | undefined, maxLength: number, describe: () => string): boolean {
    if (this.stringPhase === 'length') {
      this.stringStart = this.position;
      if (!this.take(8)) return false;
      const length = readLength(this.bytes, this.at);
      if (length < 0) throw new NarParseError(this.stringStart, `length of ${describe()} is impossibly large`);
      if (length > maxLength) {
        throw new NarParseError(
          this.stringStart,
          keyword
            ? `expected ${describe()}, got a ${length}-byte string`
            : `${describe()} is ${length} bytes long, more than the ${maxLength} allowed`,
        );
      }
      this.stringLength = length;
      this.stringPhase = 'bytes';
    }
    if (this.stringPhase === 'bytes') {
      const length = this.stringLength;
      if (!this.take(length)) return false;
      if (keyword) {
        if (!bytesEqual(this.bytes, this.at, length, keyword)) {
          const got = this.bytes.toString('utf8', this.at, this.at + length);
          throw new NarParseError(this.stringStart, `expected ${describe()}, got '${got}'`);
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

  /** What a truncation in the string being read is in. */
  inString(describe: () => string): string {
    if (this.stringPhase === 'length') return `length of ${describe()}`;
    return this.stringPhase === 'bytes' ? describe() : 'padding';
  }

  /** The value just read, valid until the next string. */
  valueView(): Buffer {
    return this.value.subarray(0, this.stringLength);
  }

  valueIs(expected: Buffer): boolean {
    return bytesEqual(this.value, 0, this.stringLength, expected);
  }

  /** The value just read, as a buffer of its own. */
  valueCopy(): Buffer {
    const copy = Buffer.allocUnsafe(this.stringLength);
    this.value.copy(copy, 0, 0, this.stringLength);
    return copy;
  }
}
