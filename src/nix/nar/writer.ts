import { TOKENS, ZERO_PADDING, paddingLength, writeLength } from './wire.js';

// Writes a NAR into fixed-size chunks without touching the file system: whoever walks a tree
// (the store's dump, or a test building a NAR by hand) calls the node methods in NAR order and
// feeds file contents in. Full chunks wait in `ready`; every chunk handed out is fresh and never
// written again, so callers may hash, compress or pass it to another thread at leisure.

export const DEFAULT_CHUNK_SIZE = 1 << 20;

const allocateFresh = (size: number): Buffer => Buffer.allocUnsafe(size);

/** Reads up to `length` bytes into `target` at `offset`; returns how many it read (0 at the end). */
export type SyncRead = (target: Buffer, offset: number, length: number) => number;

export class NarWriter {
  private chunk: Buffer;
  private position = 0;
  private ready: Buffer[] = [];
  private readonly scratch = Buffer.alloc(8);
  /** How many `entry (` frames are open: each node closes its own and then its entry's. */
  private depth = 0;

  constructor(
    readonly chunkSize = DEFAULT_CHUNK_SIZE,
    private readonly allocate: (size: number) => Buffer = allocateFresh,
  ) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new Error(`chunkSize must be a positive integer, not ${chunkSize}`);
    this.chunk = allocate(chunkSize);
    this.write(TOKENS.magic);
  }

  openDirectory(): void {
    this.write(TOKENS.directoryOpen);
  }

  /** Starts a directory entry; the next node written is its node. Names must come in byte order. */
  openEntry(name: Uint8Array): void {
    this.write(TOKENS.entryOpen);
    this.writeString(name);
    this.write(TOKENS.node);
    this.depth++;
  }

  closeDirectory(): void {
    this.closeNode();
  }

  /** The header of a regular file; `size` bytes of contents must follow, then `closeRegular`. */
  openRegular(executable: boolean, size: number): void {
    this.write(executable ? TOKENS.executableOpen : TOKENS.regularOpen);
    this.writeLength(size);
  }

  /** Contents written here are copied into the chunks (small files, or a test's bytes). */
  contents(bytes: Uint8Array): void {
    this.write(bytes);
  }

  /**
   * `length` bytes of contents read straight into the chunks by `read`, one call per chunk and no
   * intermediate buffer. Each call asks for one byte more than remains, so a source longer than
   * `length` shows as a result of `length + 1` without an extra call; a shorter one returns less.
   */
  contentsFrom(read: SyncRead, length: number): number {
    let remaining = length;
    for (;;) {
      if (this.position === this.chunkSize) this.flush();
      const wanted = Math.min(this.chunkSize - this.position, remaining + 1);
      const count = read(this.chunk, this.position, wanted);
      if (count > remaining) return length + 1;
      this.position += count;
      remaining -= count;
      if (count === 0) return length - remaining;
      // A short read of a regular file is its end: no need to ask again.
      if (remaining === 0 && count < wanted) return length;
    }
  }

  /**
   * Large contents handed over as pieces of their own: the bytes so far go to `ready` first, and
   * the caller yields the pieces itself in between (`takeReady`, then its pieces).
   */
  beginExternalContents(): void {
    this.flush();
  }

  closeRegular(size: number): void {
    this.writePadding(size);
    this.closeNode();
  }

  symlink(target: Uint8Array): void {
    this.write(TOKENS.symlinkOpen);
    this.writeString(target);
    this.closeNode();
  }

  /** The chunks completed so far, for the caller to yield. */
  takeReady(): Buffer[] {
    const ready = this.ready;
    this.ready = [];
    return ready;
  }

  get hasReady(): boolean {
    return this.ready.length > 0;
  }

  /** Ends the NAR: the last partial chunk joins `ready`. */
  finish(): Buffer[] {
    this.flush();
    return this.takeReady();
  }

  private closeNode(): void {
    this.write(TOKENS.close);
    if (this.depth > 0) {
      this.write(TOKENS.close); // the enclosing `entry (`
      this.depth--;
    }
  }

  private write(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      const count = Math.min(bytes.length - from, this.chunkSize - this.position);
      this.chunk.set(count === bytes.length ? bytes : bytes.subarray(from, from + count), this.position);
      this.position += count;
      from += count;
      if (this.position === this.chunkSize) this.flush();
    }
  }

  private writeLength(length: number): void {
    if (this.chunkSize - this.position >= 8) {
      writeLength(this.chunk, length, this.position);
      this.position += 8;
      if (this.position === this.chunkSize) this.flush();
    } else {
      writeLength(this.scratch, length, 0);
      this.write(this.scratch);
    }
  }

  /** Padding is written explicitly: chunks come from allocUnsafe and hold old memory. */
  private writePadding(length: number): void {
    const padding = paddingLength(length);
    if (padding > 0) this.write(ZERO_PADDING.subarray(0, padding));
  }

  private writeString(bytes: Uint8Array): void {
    this.writeLength(bytes.length);
    this.write(bytes);
    this.writePadding(bytes.length);
  }

  /** Moves the bytes written so far to `ready` and starts a fresh chunk (the old one is never reused). */
  private flush(): void {
    if (this.position === 0) return;
    this.ready.push(this.position === this.chunkSize ? this.chunk : this.chunk.subarray(0, this.position));
    this.chunk = this.allocate(this.chunkSize);
    this.position = 0;
  }
}
