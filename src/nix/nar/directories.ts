import { NarParseError } from './framing.js';
import { SLASH, checkName, quote } from './grammar.js';

/** An open directory: the last entry name read in it, kept to check the next is greater. */
interface DirectoryFrame {
  name: Buffer;
  nameLength: number;
  hasName: boolean;
}

/**
 * The directories around the node a NarParser is reading, outermost first: where that node is
 * (its path, put together only when asked), and the rule that a directory's entry names are
 * valid, sorted and unique. Frames past `depth` are kept for reuse.
 */
export class OpenDirectories {
  private readonly frames: DirectoryFrame[] = [];
  /** Directories open around the node being read: 0 while it is the root. */
  depth = 0;

  /**
   * The path of the node at `depth` (0 is the root): its ancestors' names joined with '/'. The
   * node being read is at `this.depth`, an open directory's own frame at its depth.
   */
  pathAt(depth: number): Buffer {
    const parts: Buffer[] = [];
    for (let index = 0; index < depth; index++) {
      const frame = this.frames[index]!;
      if (index > 0) parts.push(Buffer.of(SLASH));
      parts.push(frame.name.subarray(0, frame.nameLength));
    }
    return Buffer.concat(parts);
  }

  /** The path of the node being read. */
  path(): Buffer {
    return this.pathAt(this.depth);
  }

  pathText(depth = this.depth): string {
    return this.pathAt(depth).toString('utf8');
  }

  /** A directory node was read: the node being read is now its entries'. */
  open(): void {
    let frame = this.frames[this.depth];
    if (!frame) this.frames.push((frame = { name: Buffer.alloc(64), nameLength: 0, hasName: false }));
    frame.hasName = false;
    this.depth++;
  }

  /** The innermost directory's ')' was read. */
  close(): void {
    this.depth--;
  }

  /**
   * An entry's name (a view, read at NAR offset `start`), checked and kept as the innermost
   * directory's last, which also makes it part of the path.
   */
  acceptName(name: Buffer, start: number): void {
    const frame = this.frames[this.depth - 1]!;
    const length = name.length;
    const problem = checkName(name);
    if (problem) throw new NarParseError(start, `invalid ${problem} in '${this.pathText(this.depth - 1)}'`);
    if (frame.hasName) {
      const order = frame.name.compare(name, 0, length, 0, frame.nameLength);
      if (order >= 0) {
        const previous = frame.name.subarray(0, frame.nameLength);
        const what =
          order === 0
            ? `duplicate directory entry ${quote(name)}`
            : `directory entries out of order: ${quote(name)} after ${quote(previous)}`;
        throw new NarParseError(start, what);
      }
    }
    if (frame.name.length < length) frame.name = Buffer.alloc(Math.max(length, frame.name.length * 2));
    name.copy(frame.name, 0, 0, length);
    frame.nameLength = length;
    frame.hasName = true;
  }
}
