// Temporary files this process is writing right now. A push stopped by a signal removes them
// before it exits: a compressed NAR spooled for upload can be gigabytes, and only the next push's
// sweep would otherwise find it (and never in TMPDIR, which no sweep reads).
import { unlinkSync } from 'node:fs';

const live = new Set<string>();

export function trackTemporaryFile(path: string): void {
  live.add(path);
}

export function forgetTemporaryFile(path: string): void {
  live.delete(path);
}

/** Synchronous, for a signal handler about to exit. Returns how many files were removed. */
export function removeTrackedFilesSync(): number {
  let removed = 0;
  for (const path of live) {
    try {
      unlinkSync(path);
      removed++;
    } catch {
      // renamed into the cache already, or never written
    }
  }
  live.clear();
  return removed;
}
