import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** The names prepareNar gives spooled NARs: `.tmp-<pid>-<nonce and counter>.nar[.zst|.xz]` (temporaryName). */
const SPOOL_NAME = /^\.tmp-(\d+)-[0-9a-z]+\.nar(\.zst|\.xz)?$/;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A push killed with SIGKILL leaves its `.tmp-<pid>-*` spool files behind (never under a final
 * name, so Nix never sees them). The next push removes those whose process is gone; files of a
 * push still running beside us are left alone.
 */
export async function sweepStaleSpoolFiles(directory: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const match = SPOOL_NAME.exec(name);
    if (!match || Number(match[1]) === process.pid || isRunning(Number(match[1]))) continue;
    await unlink(join(directory, name)).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}
