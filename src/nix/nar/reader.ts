import { paddingLength } from './wire.js';

// Reads NAR framing from an async byte stream; the tree structure is parse.ts's job.

/** What is wrong with a NAR and where: `NAR byte 1234: directory entries out of order: …`. */
export class NarParseError extends Error {
  readonly offset: number;

  constructor(offset: number, what: string) {
    super(`NAR byte ${offset}: ${what}`);
    this.name = 'NarParseError';
    this.offset = offset;
  }
}

const NO_BYTES = Buffer.alloc(0);
// The largest u64 a JS number holds exactly; a length beyond it is corruption, not a real file.
const MAX_HIGH_WORD = 0x1f_ffff;

/**
 * Reads NAR framing (lengths, strings, padding) from an async byte stream, keeping count of the
 * offset for error messages. File contents are handed out as slices of the source's chunks, so
 * nothing is copied or held beyond one chunk.
 */
export class NarByteReader {
  /** Offset in the NAR of the next unread byte. */
  position = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;
  private buffer: Buffer = NO_BYTES;
  private offset = 0;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private get available(): number {
    return this.buffer.length - this.offset;
  }

  /** Appends the next non-empty source chunk to the unread bytes; false at the end of the source. */
  private async pull(): Promise<boolean> {
    while (!this.ended) {
      const { value, done } = await this.iterator.next();
      if (done) {
        this.ended = true;
        break;
      }
      if (value.length === 0) continue;
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.buffer = this.available === 0 ? chunk : Buffer.concat([this.buffer.subarray(this.offset), chunk]);
      this.offset = 0;
      return true;
    }
    return false;
  }

  private async ensure(count: number, what: string): Promise<void> {
    while (this.available < count) {
      if (!(await this.pull())) {
        throw new NarParseError(this.position + this.available, `unexpected end of NAR in ${what} (truncated)`);
      }
    }
  }

  private take(count: number): Buffer {
    const bytes = this.buffer.subarray(this.offset, this.offset + count);
    this.offset += count;
    this.position += count;
    return bytes;
  }

  async readLength(what: string): Promise<number> {
    const start = this.position;
    await this.ensure(8, what);
    const bytes = this.take(8);
    const high = bytes.readUInt32LE(4);
    if (high > MAX_HIGH_WORD) throw new NarParseError(start, `${what} is impossibly large`);
    return high * 0x1_0000_0000 + bytes.readUInt32LE(0);
  }

  async expectPadding(count: number): Promise<void> {
    if (count === 0) return;
    const start = this.position;
    await this.ensure(count, 'padding');
    if (this.take(count).some((byte) => byte !== 0)) throw new NarParseError(start, 'nonzero padding bytes');
  }

  /** A string of at most `maxLength` bytes (a copy: small, and kept while the source moves on). */
  async readString(maxLength: number, what: string): Promise<Buffer> {
    const start = this.position;
    const length = await this.readLength(`length of ${what}`);
    if (length > maxLength) throw new NarParseError(start, `${what} is ${length} bytes long, more than the ${maxLength} allowed`);
    const bytes = Buffer.from(await this.takeBytes(length, what));
    await this.expectPadding(paddingLength(length));
    return bytes;
  }

  async expectToken(token: string, what = `'${token}'`): Promise<void> {
    const start = this.position;
    const length = await this.readLength(`length of ${what}`);
    if (length > 64) throw new NarParseError(start, `expected ${what}, got a ${length}-byte string`);
    const bytes = await this.takeBytes(length, what);
    if (!bytes.equals(Buffer.from(token))) throw new NarParseError(start, `expected ${what}, got '${bytes.toString('utf8')}'`);
    await this.expectPadding(paddingLength(length));
  }

  private async takeBytes(length: number, what: string): Promise<Buffer> {
    await this.ensure(length, what);
    return this.take(length);
  }

  /** Up to `maxCount` bytes of file contents: whatever the current chunk holds, as a slice. */
  async readUpTo(maxCount: number): Promise<Buffer> {
    if (this.available === 0 && !(await this.pull())) {
      throw new NarParseError(this.position, 'unexpected end of NAR in file contents (truncated)');
    }
    return this.take(Math.min(this.available, maxCount));
  }

  async skip(count: number): Promise<void> {
    let remaining = count;
    while (remaining > 0) remaining -= (await this.readUpTo(remaining)).length;
  }

  /** Nothing may follow the root node: trailing bytes would make two NARs hash-distinct yet equal. */
  async expectEnd(): Promise<void> {
    if (this.available > 0 || (await this.pull())) throw new NarParseError(this.position, 'trailing bytes after the end of the NAR');
  }

  /** Lets the source clean up when we stop early (an error, or a consumer that broke off). */
  async close(): Promise<void> {
    try {
      await this.iterator.return?.();
    } catch {
      // The source's own cleanup failure is not the NAR's error.
    }
  }
}
