import { closeSync, constants, fstatSync, lstatSync, openSync, read, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { DEFAULT_CHUNK_SIZE, NarWriter } from '../nix/nar/writer.js';

// A file system tree -> NAR bytes, identical to `nix-store --dump`: the walk and the reads; the
// framing is nix/nar/writer.ts's.
//
// Speed matters here: `push` runs every byte through this. Small files are read synchronously
// straight into ~1 MiB output chunks, so a tree of thousands of files costs a few syscalls per
// file and one `yield` per MiB, not a promise per file; readdir's entry types spare an lstat per
// directory and symlink. Large files are read asynchronously (one read ahead) in chunk-sized
// pieces and never held whole.

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

/** What readdir says an entry is ('other': a socket, FIFO or device, refused with lstat's details). */
type EntryKind = 'directory' | 'regular' | 'symlink' | 'other';

interface DirectoryEntry {
  name: Buffer;
  kind: EntryKind;
}

const allocateFresh = (size: number): Buffer => Buffer.allocUnsafe(size);

const SLASH = Buffer.from('/');
// Nix opens plain files too; O_NOFOLLOW keeps a file swapped for a symlink since readdir from
// being followed (the NAR would claim a regular file with someone else's contents).
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
const OWNER_EXECUTE = 0o100;

const readAsync = promisify(read);

function changedWhileDumping(path: Buffer, size: number, how: string): Error {
  return new Error(
    `${path.toString()}: file ${how} while being archived (it had ${size} bytes when opened); the NAR would not match the file`,
  );
}

/** A small file read straight into the writer's chunks; one that changed size since it was opened fails. */
function readSmallFile(writer: NarWriter, fd: number, path: Buffer, size: number): void {
  const read = writer.contentsFrom((target, offset, length) => readSync(fd, target, offset, length, null), size);
  if (read > size) throw changedWhileDumping(path, size, 'grew');
  if (read < size) throw changedWhileDumping(path, size, 'shrank');
}

/** Fills `buffer` from `fd` at `position`; a file that ends early has shrunk since it was opened. */
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
async function* readLargeFile(
  fd: number,
  path: Buffer,
  size: number,
  chunkSize: number,
  allocate: (size: number) => Buffer,
): AsyncGenerator<Buffer> {
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

function kindOf(stats: Stats): EntryKind {
  return stats.isDirectory() ? 'directory' : stats.isFile() ? 'regular' : stats.isSymbolicLink() ? 'symlink' : 'other';
}

const byName = (left: DirectoryEntry, right: DirectoryEntry): number => Buffer.compare(left.name, right.name);

/**
 * A directory's entries with the types readdir reports (Node asks lstat where the file system
 * does not say), sorted as Nix sorts them: by raw bytes (std::map<std::string>), never by locale
 * or UTF-16 units.
 */
function readEntries(directory: Buffer): DirectoryEntry[] {
  const dirents = readdirSync(directory, { encoding: 'buffer', withFileTypes: true });
  const entries = new Array<DirectoryEntry>(dirents.length);
  for (let index = 0; index < dirents.length; index++) {
    const dirent = dirents[index]!;
    const kind: EntryKind = dirent.isFile()
      ? 'regular'
      : dirent.isDirectory()
        ? 'directory'
        : dirent.isSymbolicLink()
          ? 'symlink'
          : 'other';
    entries[index] = { name: dirent.name, kind };
  }
  return entries.length > 1 ? entries.sort(byName) : entries;
}

interface DirectoryFrame {
  path: Buffer;
  entries: DirectoryEntry[];
  next: number;
}

interface PendingNode {
  path: Buffer;
  /** undefined: not known yet (the root), ask lstat. */
  kind: EntryKind | undefined;
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
  let node: PendingNode | undefined = { path: Buffer.from(path), kind: undefined };
  for (;;) {
    if (node) {
      const nodePath = node.path;
      const kind = node.kind ?? kindOf(lstatSync(nodePath));
      node = undefined;
      if (kind === 'directory') {
        writer.openDirectory();
        stack.push({ path: nodePath, entries: readEntries(nodePath), next: 0 });
      } else if (kind === 'regular') {
        // fstat of the open file, not lstat of the name: the size is the size of what is read.
        const fd = openSync(nodePath, READ_FLAGS);
        try {
          const stats = fstatSync(fd);
          if (!stats.isFile()) throw new Error(`${nodePath.toString()}: no longer a regular file while being archived`);
          writer.openRegular((stats.mode & OWNER_EXECUTE) !== 0, stats.size);
          if (stats.size <= chunkSize) {
            readSmallFile(writer, fd, nodePath, stats.size);
          } else {
            writer.beginExternalContents();
            yield* writer.takeReady();
            yield* readLargeFile(fd, nodePath, stats.size, chunkSize, allocate);
          }
          writer.closeRegular(stats.size);
        } finally {
          closeSync(fd);
        }
      } else if (kind === 'symlink') {
        writer.symlink(readlinkSync(nodePath, { encoding: 'buffer' }));
      } else {
        throw unsupportedType(nodePath, lstatSync(nodePath));
      }
    }
    if (writer.hasReady) yield* writer.takeReady();

    const frame = stack[stack.length - 1];
    if (!frame) break;
    const entry = frame.entries[frame.next++];
    if (entry) {
      writer.openEntry(entry.name);
      node = { path: Buffer.concat([frame.path, SLASH, entry.name]), kind: entry.kind };
    } else {
      stack.pop();
      writer.closeDirectory();
    }
  }
  yield* writer.finish();
}
