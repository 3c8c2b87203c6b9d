import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { temporaryName } from './temp-name.js';

// A file replaced all at once: written under a temporary name in the same folder (the same file
// system, so the rename is atomic), then renamed over the old one. A crash leaves the old file or
// the new one, never half of one, and a failed write removes its temporary file.

export interface AtomicWriteOptions {
  /** The new file's mode, set on the open file before any byte is written. */
  mode?: number;
  /** Runs after the data is on disk and before the rename (to chown, or to keep a backup). */
  beforeRename?: (temporary: string) => Promise<void>;
}

export async function writeFileAtomically(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temporary = join(dirname(path), temporaryName());
  const mode = options.mode ?? 0o644;
  try {
    const handle = await open(temporary, 'wx', mode);
    try {
      // open() applies the umask to the mode; chmod does not.
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await options.beforeRename?.(temporary);
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/**
 * The same, synchronously and without fsync: for the small files of a file cache (narinfos,
 * nix-cache-info), where a push of ten thousand small paths spends more on thread-pool round
 * trips than on the writes themselves.
 */
export function writeFileAtomicallySync(path: string, data: string | Uint8Array): void {
  const temporary = join(dirname(path), temporaryName());
  try {
    writeFileSync(temporary, data);
    renameSync(temporary, path);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // nothing was written
    }
    throw error;
  }
}
