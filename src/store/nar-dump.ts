import { closeSync, constants, lstatSync, openSync, read, readSync, readdirSync, readlinkSync, close, open, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { DEFAULT_CHUNK_SIZE, NarWriter } from '../nix/nar/writer.js';

// A file system tree -> NAR bytes, identical to `nix-store --dump`: the walk and the reads; the
// framing is nix/nar/writer.ts's.
//
// Speed matters here: `push` runs every byte through this. Small files are read synchronously
// straight into ~1 MiB output chunks, so a tree of thousands of files costs a few syscalls per
// file and one `yield` per MiB, not a promise per file. Large files are read asynchronously (one
// read ahead) in chunk-sized pieces and never held whole.

export { DEFAULT_CHUNK_SIZE };

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

function changedWhileDumping(path: Buffer, size: number, how: string): Error {
  return new Error(`${path.toString()}: file ${how} while being archived (lstat said ${size} bytes); the NAR would not match the file`);
}

/** A small file read straight into the writer's chunks; one that changed size since lstat fails. */
function readSmallFile(writer: NarWriter, path: Buffer, size: number): void {
  const fd = openSync(path, READ_FLAGS);
  try {
    const read = writer.contentsFrom((target, offset, length) => readSync(fd, target, offset, length, null), size);
    if (read > size) throw changedWhileDumping(path, size, 'grew');
    if (read < size) throw changedWhileDumping(path, size, 'shrank');
  } finally {
    closeSync(fd);
  }
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
  const allocate = options.allocate ?? allocateFresh;
  const writer = new NarWriter(chunkSize, allocate);

  // Depth-first with an explicit stack: no recursion limit and no generator per directory.
  const stack: DirectoryFrame[] = [];
  let nodePath: Buffer | undefined = Buffer.from(path);
  for (;;) {
    if (nodePath) {
      const stats = lstatSync(nodePath);
      if (stats.isDirectory()) {
        writer.openDirectory();
        stack.push({ path: nodePath, names: sortedEntryNames(nodePath), next: 0 });
      } else if (stats.isFile()) {
        writer.openRegular((stats.mode & OWNER_EXECUTE) !== 0, stats.size);
        if (stats.size <= chunkSize) {
          readSmallFile(writer, nodePath, stats.size);
        } else {
          writer.beginExternalContents();
          yield* writer.takeReady();
          yield* readLargeFile(nodePath, stats.size, chunkSize, allocate);
        }
        writer.closeRegular(stats.size);
      } else if (stats.isSymbolicLink()) {
        writer.symlink(readlinkSync(nodePath, { encoding: 'buffer' }));
      } else {
        throw unsupportedType(nodePath, stats);
      }
      nodePath = undefined;
    }
    if (writer.hasReady) yield* writer.takeReady();

    const frame = stack[stack.length - 1];
    if (!frame) break;
    const name = frame.names[frame.next++];
    if (name) {
      writer.openEntry(name);
      nodePath = Buffer.concat([frame.path, SLASH, name]);
    } else {
      stack.pop();
      writer.closeDirectory();
    }
  }
  yield* writer.finish();
}
