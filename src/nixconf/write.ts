import { chown, copyFile, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../errors.js';

export const BACKUP_SUFFIX = '.bak';

function permissionError(path: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new UserError(`cannot write ${path}: ${code}`, code === 'EACCES' || code === 'EPERM' ? 'run the command with sudo, or pick another place with -O DIR' : undefined);
}

/**
 * Replaces a config file so a crash leaves the old file or the new one, never half of one: the
 * text goes to a temporary file in the same folder (rename is atomic only within a filesystem),
 * with the old file's mode and owner, and is renamed over it. The old file is kept beside it as
 * `<file>.bak`, so a user can always see and undo what we changed.
 */
export async function replaceFile(path: string, text: string, options: { mode?: number; backup?: boolean } = {}): Promise<{ backupPath?: string }> {
  let previous: { mode: number; uid: number; gid: number } | undefined;
  try {
    previous = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw permissionError(path, error);
  }
  const mode = previous ? previous.mode & 0o7777 : (options.mode ?? 0o644);
  const temporary = `${path}.cachix-tmp-${process.pid}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(temporary, 'w', mode);
    try {
      await handle.writeFile(text);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (previous && process.getuid?.() === 0) await chown(temporary, previous.uid, previous.gid);
    let backupPath: string | undefined;
    if (previous && options.backup !== false) {
      backupPath = path + BACKUP_SUFFIX;
      await copyFile(path, backupPath);
    }
    await rename(temporary, path);
    return backupPath ? { backupPath } : {};
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    if (error instanceof UserError) throw error;
    throw permissionError(path, error);
  }
}
