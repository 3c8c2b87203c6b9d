// Where compressed NARs wait before upload, and how a cache in a local folder takes one: both
// decided by the cache (its capabilities.staging), both callable from a worker thread.
import { tmpdir } from 'node:os';
import type { NarStaging } from './cache.js';
import { placeNarInFileCache } from './file-nar.js';

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
