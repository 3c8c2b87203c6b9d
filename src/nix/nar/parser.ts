import { OpenDirectories } from './directories.js';
import { FramingReader, MAX_TOKEN_LENGTH, NarParseError } from './framing.js';
import { NAR_MAGIC, paddingLength } from './wire.js';
import {
  DIRECTORY,
  REGULAR,
  SYMLINK,
  EXECUTABLE,
  CONTENTS,
  ENTRY,
  CLOSE_PAREN,
  quote,
  MAGIC,
  OPEN,
  TYPE_KEYWORD,
  TYPE,
  REGULAR_TAG,
  EXECUTABLE_VALUE,
  CONTENTS_KEYWORD,
  TARGET_KEYWORD,
  TARGET,
  CLOSE,
  ENTRY_CLOSE,
  DIRECTORY_TAG,
  ENTRY_OPEN,
  NAME_KEYWORD,
  NAME,
  NODE_KEYWORD,
  SIZE,
  CONTENTS_BYTES,
  CONTENTS_PADDING,
  END,
  KEYWORD,
  MAX_VALUE_LENGTH,
} from './grammar.js';

export { NarParseError } from './framing.js';

// NAR bytes pushed in chunks of any size -> validated events, synchronously: the one grammar
// behind both `parseNar` (entries as an async stream) and checks that only need to know a NAR is
// whole and canonical (verify, on a worker, at the speed of sha256). Stricter than Nix 2.8's own
// reader on purpose: we accept only the canonical form that `nix-store --dump` writes (fixed
// field order, sorted unique names, zero padding, nothing after the root), because a NAR is
// trusted by its hash and a second spelling of a tree would be a second hash for it.

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

/**
 * A push parser: `write` each chunk as it arrives, `end` after the last. Both throw
 * NarParseError at the first thing that is wrong, and every call after that throws it again.
 * Nothing of a written chunk is kept after `write` returns, so the caller may reuse its memory.
 * Paths are put together only for a listener that wants them and for error messages.
 */
export class NarParser {
  private state = MAGIC;
  private readonly framing = new FramingReader();
  private readonly describeString = (): string => this.describe();
  private readonly directories = new OpenDirectories();
  // The regular file being read.
  private executable = false;
  private size = 0;
  private remaining = 0;
  private failure: NarParseError | undefined;

  constructor(private readonly listener: NarListener = {}) {}

  /** Offset in the NAR of the next byte to be read: in `regular`, where the file's contents start. */
  get position(): number {
    return this.framing.position;
  }

  write(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    const framing = this.framing;
    framing.startChunk(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    try {
      while (framing.hasInput) this.step();
    } catch (error) {
      if (error instanceof NarParseError) this.failure = error;
      throw error;
    } finally {
      framing.endChunk();
    }
  }

  /** The NAR is complete: anything still expected makes it truncated. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.state === END) return;
    this.failure = new NarParseError(this.framing.received, `unexpected end of NAR in ${this.expected()} (truncated)`);
    throw this.failure;
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
        return this.framing.inString(this.describeString);
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
        return `')' closing '${this.directories.pathText()}'`;
      case ENTRY_CLOSE:
        return `')' closing the entry '${this.directories.pathText()}'`;
      case DIRECTORY_TAG:
        return "'entry' or ')'";
      case NAME:
        return 'entry name';
      default:
        return `'${KEYWORD[this.state]!.toString('latin1')}'`;
    }
  }

  private step(): void {
    const framing = this.framing;
    switch (this.state) {
      case CONTENTS_BYTES: {
        const piece = framing.contents(this.remaining);
        this.remaining -= piece.length;
        if (this.listener.contents) this.listener.contents(piece);
        if (this.remaining === 0) this.endContents();
        return;
      }
      case CONTENTS_PADDING:
        if (framing.padding(paddingLength(this.size))) this.state = CLOSE;
        return;
      case SIZE: {
        const size = framing.readU64('file size');
        if (size === undefined) return;
        this.size = size;
        this.remaining = size;
        if (this.listener.regular) this.listener.regular(this.directories.path(), this.executable, size);
        this.state = CONTENTS_BYTES;
        if (size === 0) this.endContents();
        return;
      }
      case END:
        throw new NarParseError(framing.position, 'trailing bytes after the end of the NAR');
      default: {
        const keyword = KEYWORD[this.state];
        if (framing.readString(keyword, keyword ? MAX_TOKEN_LENGTH : MAX_VALUE_LENGTH[this.state]!, this.describeString)) this.accept();
      }
    }
  }

  private endContents(): void {
    this.state = paddingLength(this.size) > 0 ? CONTENTS_PADDING : CLOSE;
  }

  /** A whole string of the current state is in: act on it and move on. */
  private accept(): void {
    const framing = this.framing;
    const start = framing.stringStart;
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
        if (framing.valueIs(DIRECTORY)) {
          if (this.listener.directory) this.listener.directory(this.directories.path());
          this.directories.open();
          this.state = DIRECTORY_TAG;
        } else if (framing.valueIs(REGULAR)) {
          this.executable = false;
          this.state = REGULAR_TAG;
        } else if (framing.valueIs(SYMLINK)) {
          this.state = TARGET_KEYWORD;
        } else {
          throw new NarParseError(start, `unknown node type ${quote(framing.valueCopy())}`);
        }
        return;
      case REGULAR_TAG:
      case CONTENTS_KEYWORD:
        if (this.state === REGULAR_TAG && framing.valueIs(EXECUTABLE)) {
          this.executable = true;
          this.state = EXECUTABLE_VALUE;
        } else if (framing.valueIs(CONTENTS)) {
          this.state = SIZE;
        } else {
          throw new NarParseError(
            start,
            `expected 'contents' for file '${this.directories.pathText()}', got ${quote(framing.valueCopy())}`,
          );
        }
        return;
      case EXECUTABLE_VALUE:
        this.state = CONTENTS_KEYWORD;
        return;
      case TARGET_KEYWORD:
        this.state = TARGET;
        return;
      case TARGET: {
        const target = framing.valueView();
        // Nix could never dump these (the kernel refuses them), so only a forged NAR has them.
        if (target.length === 0) throw new NarParseError(start, `symlink '${this.directories.pathText()}' has an empty target`);
        if (target.includes(0)) throw new NarParseError(start, `symlink '${this.directories.pathText()}' target contains a NUL byte`);
        if (this.listener.symlink) this.listener.symlink(this.directories.path(), framing.valueCopy());
        this.state = CLOSE;
        return;
      }
      case CLOSE:
        this.state = this.directories.depth === 0 ? END : ENTRY_CLOSE;
        return;
      case ENTRY_CLOSE:
        this.state = DIRECTORY_TAG;
        return;
      case DIRECTORY_TAG:
        if (framing.valueIs(ENTRY)) {
          this.state = ENTRY_OPEN;
        } else if (framing.valueIs(CLOSE_PAREN)) {
          // The directory is closed; what follows closes the entry that held it, if any.
          this.directories.close();
          this.state = this.directories.depth === 0 ? END : ENTRY_CLOSE;
        } else {
          throw new NarParseError(
            start,
            `expected 'entry' or ')' in directory '${this.directories.pathText(this.directories.depth - 1)}', got ${quote(framing.valueCopy())}`,
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
        this.directories.acceptName(framing.valueView(), start);
        this.state = NODE_KEYWORD;
        return;
      case NODE_KEYWORD:
        this.state = OPEN;
        return;
      default:
        throw new Error(`NarParser: no string is read in state ${this.state}`);
    }
  }
}
