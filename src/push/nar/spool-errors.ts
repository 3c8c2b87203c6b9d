// What the user can do about a spool folder we cannot write. For a file cache the spool folder is
// the cache's own nar/ folder, so these are also the file cache's read-only and permission errors:
// the spool is the first thing a push writes there.
import { UserError } from '../../errors.js';

const WHERE = 'where compressed NARs are written before upload';
const NOTHING_LEFT = 'nothing half-written was left in the cache';

export function spoolErrorToUser(error: unknown, spoolDirectory: string): unknown {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOSPC':
      return new UserError(
        `no space left on the device holding ${spoolDirectory}, ${WHERE}`,
        `free some space and push again (for remote caches, TMPDIR picks where NARs are spooled); ${NOTHING_LEFT}`,
      );
    case 'EROFS':
      return new UserError(
        `${spoolDirectory} is on a read-only file system, and it is ${WHERE}`,
        `push to a cache on a writable file system (for remote caches, TMPDIR picks where NARs are spooled); ${NOTHING_LEFT}`,
      );
    case 'EACCES':
    case 'EPERM':
      return new UserError(
        `no permission to write ${spoolDirectory}, ${WHERE}`,
        `check its owner and mode, or push as a user who can write it (for remote caches, TMPDIR picks where NARs are spooled); ${NOTHING_LEFT}`,
      );
    default:
      return error;
  }
}
