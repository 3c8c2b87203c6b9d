// A prepared NAR as the cache's upload() takes it, and what is left to remove afterwards.
import { createReadStream } from 'node:fs';
import type { NarUpload } from '../../caches/cache.js';
import { forgetTemporaryFile, trackTemporaryFile } from '../../util/temp-files.js';
import { removeIfPresent, type PreparedNar } from './prepare.js';

export interface StagedUpload {
  upload: NarUpload;
  /** Removes the staged file if the cache did not take it (a file cache renames it away); a placed NAR is the cache's and stays. */
  cleanup(): void;
}

export function stagedUpload(prepared: PreparedNar): StagedUpload {
  const { narInfo, localPath, fileSize, placed } = prepared;
  const upload: NarUpload = {
    narUrl: narInfo.url,
    fileSize,
    fileHashBase32: narInfo.url.slice('nar/'.length, narInfo.url.indexOf('.')),
    compression: narInfo.compression,
    localPath,
    open: () => createReadStream(localPath, { highWaterMark: 1 << 20 }),
  };
  if (placed) return { upload, cleanup: () => undefined };
  trackTemporaryFile(localPath);
  return {
    upload,
    cleanup: () => {
      removeIfPresent(localPath);
      forgetTemporaryFile(localPath);
    },
  };
}

/** A prepared NAR that will not be uploaded after all (a push stopped by a failure): removed unless placed. */
export function discardPrepared(prepared: PreparedNar): void {
  if (!prepared.placed) removeIfPresent(prepared.localPath);
}
