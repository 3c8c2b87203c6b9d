// The uncompressed NAR of a store path, for caches that compress and sign on their server (attic).
import type { NarSource } from '../../caches/cache.js';
import type { PathInfo } from '../../store/path-info.js';
import { checkNarAgainstRecord, corrupted } from './check.js';
import { narReaders } from './reader.js';

export interface NarSourceOptions {
  omitDeriver: boolean;
  /** Told of each chunk as it is read, for progress on a terminal. */
  onNarBytes?: ((bytes: number) => void) | undefined;
}

/**
 * Each `open()` dumps the path again on a reader thread (a retry re-reads the store, never a
 * copy in memory). One chunk is held back until the next arrives, and the last one until the
 * NAR's sha256 and size are compared with what Nix recorded: a path changed after it was built
 * fails the stream before its end, so the server never gets a complete, wrong NAR.
 */
export function narSourceOf(info: PathInfo, options: NarSourceOptions): NarSource {
  return {
    storePath: info.path,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    deriver: options.omitDeriver ? undefined : info.deriver,
    sigs: info.sigs,
    ca: info.ca,
    open: () => checkedDump(info, options.onNarBytes),
  };
}

async function* checkedDump(info: PathInfo, onNarBytes: ((bytes: number) => void) | undefined): AsyncGenerator<Buffer> {
  const reading = narReaders().read(info.path, info.narSize);
  let held: Buffer | undefined;
  let size = 0;
  try {
    for (;;) {
      const next = await reading.next();
      if (next.done) {
        checkNarAgainstRecord(info, next.value.narDigest, next.value.narSize);
        if (held) yield held;
        return;
      }
      size += next.value.length;
      // More than Nix recorded: stop at once rather than send a NAR the server must refuse.
      if (size > info.narSize) throw corrupted(info, `NAR larger than the recorded ${info.narSize} bytes`);
      onNarBytes?.(next.value.length);
      if (held) yield held;
      held = next.value;
    }
  } finally {
    await reading.return?.(undefined as never);
  }
}
