import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * A small local file read whole on this thread: open, fstat, read, close. For files of a few
 * hundred bytes (narinfos, tiny NARs) this costs a fraction of fs/promises' readFile, whose every
 * step is a round trip through the thread pool (measured here: about a fifth of the CPU time).
 * Undefined when the file is larger than `maxBytes`, so no one reads a huge file by mistake;
 * errors (ENOENT included) are thrown as the system gives them.
 */
export function readSmallFileSync(path: string, maxBytes: number): Buffer | undefined {
  const descriptor = openSync(path, 'r');
  try {
    const size = fstatSync(descriptor).size;
    if (size > maxBytes) return undefined;
    const bytes = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const read = readSync(descriptor, bytes, filled, size - filled, filled);
      if (read === 0) break;
      filled += read;
    }
    return filled === size ? bytes : bytes.subarray(0, filled);
  } finally {
    closeSync(descriptor);
  }
}
