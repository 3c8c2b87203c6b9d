import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writerTag } from '../../util/writer-identity.js';

/** The names prepareNar gives spooled NARs: `.tmp-<pid>-<writer tag>-<nonce and counter>.nar[.zst|.xz]` (temporaryName). */
const SPOOL_NAME = /^\.tmp-(\d+)-([0-9a-f]{8})-[0-9a-z]+\.nar(\.zst|\.xz)?$/;
/** Names from before the writer tag: whose they are cannot be known. */
const UNTAGGED_SPOOL_NAME = /^\.tmp-\d+-[0-9a-z]+\.nar(\.zst|\.xz)?$/;

/**
 * A file whose writer we cannot ask about is removed only when nothing has touched it for this
 * long: a spool file is written continuously, and read for at most as long as one upload takes.
 */
export const FOREIGN_SPOOL_STALE_MS = 24 * 60 * 60 * 1000;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function untouchedFor(path: string, ms: number): Promise<boolean> {
  try {
    const info = await stat(path);
    return Date.now() - info.mtimeMs > ms;
  } catch {
    return false;
  }
}

/**
 * A push killed with SIGKILL leaves its `.tmp-*` spool files behind (never under a final name, so
 * Nix never sees them). The next push removes those whose writer is certainly gone: same machine,
 * boot and PID namespace (the writer tag) and no process with that pid. A file written elsewhere
 * (another container, PID namespace or NFS client sharing the cache) may belong to a live push
 * whose pid means nothing here, so it is removed only after a day untouched.
 */
export async function sweepStaleSpoolFiles(directory: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return 0;
  }
  const ourTag = writerTag();
  let removed = 0;
  for (const name of names) {
    const path = join(directory, name);
    const match = SPOOL_NAME.exec(name);
    let stale: boolean;
    if (match && match[2] === ourTag) {
      const pid = Number(match[1]);
      stale = pid !== process.pid && !isRunning(pid);
    } else if (match || UNTAGGED_SPOOL_NAME.test(name)) {
      stale = await untouchedFor(path, FOREIGN_SPOOL_STALE_MS);
    } else {
      continue;
    }
    if (!stale) continue;
    await unlink(path).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}
