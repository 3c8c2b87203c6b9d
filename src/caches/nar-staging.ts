// Where compressed NARs wait before upload, and how a cache in a local folder takes one: both
// decided by the cache (its capabilities.staging), both callable from a worker thread.
import { tmpdir } from 'node:os';
import { fsErrorToUser } from '../errors.js';
import type { NarStaging } from './cache.js';
import { placeNarInFileCache } from './file-nar.js';

const STAGING_ROLE = 'where compressed NARs are written before upload';
const NOTHING_LEFT = 'nothing half-written was left in the cache';
const ELSEWHERE = 'for remote caches, TMPDIR picks where NARs are spooled';

/**
 * A staging folder we cannot write, in the user's terms. A cache in a local folder stages in its
 * own nar/ folder, so these are also its full-disk, read-only and permission errors: staging is
 * the first thing a push writes there.
 */
export function stagingErrorToUser(staging: NarStaging, error: unknown): unknown {
  return fsErrorToUser(error, {
    path: stagingDirectory(staging),
    role: STAGING_ROLE,
    hints: {
      full: `free some space and push again (${ELSEWHERE}); ${NOTHING_LEFT}`,
      readOnly: `push to a cache on a writable file system (${ELSEWHERE}); ${NOTHING_LEFT}`,
      denied: `check its owner and mode, or push as a user who can write it (${ELSEWHERE}); ${NOTHING_LEFT}`,
    },
  });
}

export function stagingDirectory(staging: NarStaging): string {
  return staging.kind === 'in-cache' ? staging.directory : tmpdir();
}

/**
 * Puts a staged, checked NAR under its final name `narUrl` where the cache keeps it, when the
 * cache lets the pusher do so (a cache in a local folder: a rename, complete or not at all).
 * Returns the final path, or undefined when the NAR stays staged until `upload()`.
 */
export function placeStagedNar(staging: NarStaging, stagedPath: string, narUrl: string): string | undefined {
  return staging.kind === 'in-cache' ? placeNarInFileCache(staging.root, stagedPath, narUrl) : undefined;
}
