import { NarParser } from './parser.js';

export { NarParseError, NarParser, type NarListener } from './parser.js';

// NAR byte stream -> validated entries as an async stream, in the order they appear, each file's
// contents streamed. The grammar and its checks are NarParser's; this only turns its events into
// entries a consumer pulls.

interface EntryBase {
  /** Path inside the NAR joined with '/', '' for the root; names decoded as UTF-8 for display. */
  path: string;
  /** The same path as raw bytes: names need not be UTF-8, and restoring must be exact. */
  rawPath: Buffer;
}

export interface NarDirectory extends EntryBase {
  type: 'directory';
}

export interface NarSymlink extends EntryBase {
  type: 'symlink';
  target: string;
  rawTarget: Buffer;
}

export interface NarRegularFile extends EntryBase {
  type: 'regular';
  executable: boolean;
  size: number;
  /**
   * The file's bytes, streamed (never held whole). Read it before asking the parser for the next
   * entry; whatever is left unread then is skipped, and reading it later throws.
   */
  contents: AsyncIterable<Buffer>;
}

export type NarEntry = NarDirectory | NarSymlink | NarRegularFile;

type ParsedEntry = NarDirectory | NarSymlink | Omit<NarRegularFile, 'contents'>;

export async function* parseNar(source: AsyncIterable<Uint8Array>): AsyncGenerator<NarEntry> {
  // What the parser reported for the chunks written so far: entries, and file contents pieces
  // (views of the source's chunks, which are not reused).
  let queue: Array<ParsedEntry | Buffer> = [];
  let head = 0;
  const parser = new NarParser({
    directory: (rawPath) => queue.push({ type: 'directory', path: rawPath.toString('utf8'), rawPath }),
    symlink: (rawPath, rawTarget) =>
      queue.push({ type: 'symlink', path: rawPath.toString('utf8'), rawPath, target: rawTarget.toString('utf8'), rawTarget }),
    regular: (rawPath, executable, size) => queue.push({ type: 'regular', path: rawPath.toString('utf8'), rawPath, executable, size }),
    contents: (piece) => queue.push(piece),
  });
  const iterator = source[Symbol.asyncIterator]();
  let ended = false;
  // An error is thrown only once everything the parser reported before it has been handed out.
  let failure: unknown;

  /** Makes sure an unread event is queued; false once the NAR has ended. */
  async function fill(): Promise<boolean> {
    while (head >= queue.length) {
      queue = [];
      head = 0;
      if (failure !== undefined) throw failure;
      if (ended) return false;
      try {
        const { value, done } = await iterator.next();
        if (done) {
          ended = true;
          parser.end();
        } else {
          parser.write(value);
        }
      } catch (error) {
        failure = error;
      }
    }
    return true;
  }

  try {
    while (await fill()) {
      const event = queue[head++]!;
      // Contents of a file the consumer did not read: skipped.
      if (Buffer.isBuffer(event)) continue;
      if (event.type !== 'regular') {
        yield event;
        continue;
      }
      const state = { remaining: event.size, done: false };
      const path = event.path;
      const contents = async function* (): AsyncGenerator<Buffer> {
        while (state.remaining > 0 || state.done) {
          if (state.done) throw new Error(`the contents of '${path}' were read after the NAR parser moved past them`);
          await fill();
          const piece = queue[head++] as Buffer;
          state.remaining -= piece.length;
          yield piece;
        }
      };
      yield { ...event, contents: contents() };
      state.done = true;
    }
  } finally {
    try {
      await iterator.return?.();
    } catch {
      // The source's own cleanup failure is not the NAR's error.
    }
  }
}
