import { closeSync, constants, lstatSync, openSync, read, readSync, readdirSync, readlinkSync, close, open, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { TOKENS, ZERO_PADDING, paddingLength, writeLength } from './format.js';

/**
 * Filesystem tree -> NAR bytes, identical to `nix-store --dump`.
 *
 * Speed matters here: `push` runs every byte through this. Small files are read synchronously
 * straight into ~1 MiB output chunks, so a tree of thousands of files costs a few syscalls per
 * file and one `yield` per MiB, not a promise per file. Large files are read asynchronously (one
 * read ahead) in chunk-sized pieces and never held whole. Every yielded Buffer is fresh and
 * never written again: callers may hash, compress or hand it to another thread at leisure.
 */

export const DEFAULT_CHUNK_SIZE = 1 << 20;

export interface DumpOptions {
  /** Size of the yielded chunks, and of the reads of large files. */
  chunkSize?: number;
  /**
   * Where output buffers come from (at most chunkSize bytes each). A caller that hands buffers
   * back once it is done with them can recycle them here instead of leaving them to the GC.
   */
  allocate?: (size: number) => Buffer;
}

const allocateFresh = (size: number): Buffer => Buffer.allocUnsafe(size);

const SLASH = Buffer.from('/');
// Nix opens plain files too; O_NOFOLLOW keeps a file swapped for a symlink since lstat from
// being followed (the NAR would claim a regular file with someone else's contents).
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
const OWNER_EXECUTE = 0o100;

const openAsync = promisify(open);
const readAsync = promisify(read);
const closeAsync = promisify(close);

/** Accumulates NAR bytes into fixed-size chunks; full chunks wait in `ready` to be yielded. */
class ChunkWriter {
  chunk: Buffer;
  position = 0;
  ready: Buffer[] = [];
  private readonly scratch = Buffer.alloc(8);

  constructor(
    readonly chunkSize: number,
    private readonly allocate: (size: number) => Buffer,
  ) {
    this.chunk = allocate(chunkSize);
  }

  write(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      const count = Math.min(bytes.length - from, this.chunkSize - this.position);
      this.chunk.set(count === bytes.length ? bytes : bytes.subarray(from, from + count), this.position);
      this.position += count;
      from += count;
      if (this.position === this.chunkSize) this.flush();
    }
  }

  writeLength(length: number): void {
    if (this.chunkSize - this.position >= 8) {
      writeLength(this.chunk, length, this.position);
      this.position += 8;
      if (this.position === this.chunkSize) this.flush();
    } else {
      writeLength(this.scratch, length, 0);
      this.write(this.scratch);
    }
  }

  /** Padding must be written explicitly: chunks come from allocUnsafe and hold old memory. */
  writePadding(length: number): void {
    const padding = paddingLength(length);
    if (padding > 0) this.write(ZERO_PADDING.subarray(0, padding));
  }

  writeString(bytes: Uint8Array): void {
    this.writeLength(bytes.length);
    this.write(bytes);
    this.writePadding(bytes.length);
  }

  /** Moves the bytes written so far to `ready` and starts a fresh chunk (the old one is never reused). */
  flush(): void {
    if (this.position === 0) return;
    this.ready.push(this.position === this.chunkSize ? this.chunk : this.chunk.subarray(0, this.position));
    this.chunk = this.allocate(this.chunkSize);
    this.position = 0;
  }

  takeReady(): Buffer[] {
    const ready = this.ready;
    this.ready = [];
    return ready;
  }

  /**
   * Reads a file of `size` bytes (per lstat) straight into the chunks. Asks for one byte more
   * than remains, so a file that grew since lstat is caught without an extra syscall.
   */
  readFileSync(path: Buffer, size: number): void {
    const fd = openSync(path, READ_FLAGS);
    try {
      let remaining = size;
      for (;;) {
        if (this.position === this.chunkSize) this.flush();
        const wanted = Math.min(this.chunkSize - this.position, remaining + 1);
        const count = readSync(fd, this.chunk, this.position, wanted, null);
        if (count > remaining) throw changedWhileDumping(path, size, 'grew');
        this.position += count;
        remaining -= count;
        if (count === 0) {
          if (remaining > 0) throw changedWhileDumping(path, size, 'shrank');
          break;
        }
        // A short read of a regular file is end of file: no need to ask again.
        if (remaining === 0 && count < wanted) break;
      }
    } finally {
      closeSync(fd);
    }
  }
}

function changedWhileDumping(path: Buffer, size: number, how: string): Error {
  return new Error(`${path.toString()}: file ${how} while being archived (lstat said ${size} bytes); the NAR would not match the file`);
}

/** Fills `buffer` from `fd` at `position`; a file that ends early has shrunk since lstat. */
async function readFully(fd: number, buffer: Buffer, position: number, path: Buffer, size: number): Promise<Buffer> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await readAsync(fd, buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) throw changedWhileDumping(path, size, 'shrank');
    filled += bytesRead;
  }
  return buffer;
}

/**
 * A large file in chunk-sized pieces, each a fresh Buffer. The next read is started before the
 * current piece is yielded, so the disk (thread pool) works while the caller hashes/compresses.
 */
async function* readLargeFile(path: Buffer, size: number, chunkSize: number, allocate: (size: number) => Buffer): AsyncGenerator<Buffer> {
  const fd = await openAsync(path, READ_FLAGS);
  let pending: Promise<Buffer> | undefined;
  try {
    const readPieceAt = (offset: number): Promise<Buffer> =>
      readFully(fd, allocate(Math.min(chunkSize, size - offset)), offset, path, size);
    let offset = 0;
    if (size > 0) pending = readPieceAt(0);
    while (pending) {
      const piece = await pending;
      offset += piece.length;
      pending = offset < size ? readPieceAt(offset) : undefined;
      yield piece;
    }
    const { bytesRead } = await readAsync(fd, Buffer.alloc(1), 0, 1, size);
    if (bytesRead !== 0) throw changedWhileDumping(path, size, 'grew');
  } finally {
    // A read still in flight (caller stopped early, or an error) must finish before the fd closes.
    if (pending) await pending.catch(() => undefined);
    await closeAsync(fd);
  }
}

function unsupportedType(path: Buffer, stats: Stats): Error {
  const kind = stats.isSocket()
    ? 'a socket'
    : stats.isFIFO()
      ? 'a named pipe (FIFO)'
      : stats.isBlockDevice()
        ? 'a block device'
        : stats.isCharacterDevice()
          ? 'a character device'
          : `of unknown type (mode ${stats.mode.toString(8)})`;
  return new Error(`${path.toString()} is ${kind}: a NAR holds only regular files, directories and symlinks (as Nix's)`);
}

/** Nix sorts entries by raw bytes (std::map<std::string>), never by locale or UTF-16 units. */
function sortedEntryNames(directory: Buffer): Buffer[] {
  return readdirSync(directory, { encoding: 'buffer' }).sort(Buffer.compare);
}

interface DirectoryFrame {
  path: Buffer;
  names: Buffer[];
  next: number;
}

/**
 * Streams the NAR of `path` (a file, symlink or directory; symlinks are archived, not followed).
 * Throws on sockets, devices and FIFOs, and on files that change size while being read.
 */
export async function* dumpNar(path: string, options: DumpOptions = {}): AsyncGenerator<Buffer> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new Error(`chunkSize must be a positive integer, not ${chunkSize}`);
  const allocate = options.allocate ?? allocateFresh;
  const writer = new ChunkWriter(chunkSize, allocate);
  writer.write(TOKENS.magic);

  // Depth-first with an explicit stack: no recursion limit and no generator per directory.
  const stack: DirectoryFrame[] = [];
  let nodePath: Buffer | undefined = Buffer.from(path);
  for (;;) {
    if (nodePath) {
      const stats = lstatSync(nodePath);
      if (stats.isDirectory()) {
        writer.write(TOKENS.directoryOpen);
        stack.push({ path: nodePath, names: sortedEntryNames(nodePath), next: 0 });
      } else {
        if (stats.isFile()) {
          writer.write((stats.mode & OWNER_EXECUTE) !== 0 ? TOKENS.executableOpen : TOKENS.regularOpen);
          writer.writeLength(stats.size);
          if (stats.size <= chunkSize) {
            writer.readFileSync(nodePath, stats.size);
          } else {
            writer.flush();
            yield* writer.takeReady();
            yield* readLargeFile(nodePath, stats.size, chunkSize, allocate);
          }
          writer.writePadding(stats.size);
        } else if (stats.isSymbolicLink()) {
          writer.write(TOKENS.symlinkOpen);
          writer.writeString(readlinkSync(nodePath, { encoding: 'buffer' }));
        } else {
          throw unsupportedType(nodePath, stats);
        }
        writer.write(TOKENS.close);
        if (stack.length > 0) writer.write(TOKENS.close); // the enclosing `entry (`
      }
      nodePath = undefined;
    }
    if (writer.ready.length > 0) yield* writer.takeReady();

    const frame = stack[stack.length - 1];
    if (!frame) break;
    const name = frame.names[frame.next++];
    if (name) {
      writer.write(TOKENS.entryOpen);
      writer.writeString(name);
      writer.write(TOKENS.node);
      nodePath = Buffer.concat([frame.path, SLASH, name]);
    } else {
      stack.pop();
      writer.write(TOKENS.close); // the directory node
      if (stack.length > 0) writer.write(TOKENS.close); // the enclosing `entry (`
    }
  }
  writer.flush();
  yield* writer.takeReady();
}
