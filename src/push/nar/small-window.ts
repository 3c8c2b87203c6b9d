// How many small NARs may be in memory at once (being prepared on the pool or waiting for an
// upload slot), and the options a pool worker gets.
import { availableParallelism } from 'node:os';
import type { PathInfo } from '../../store/path-info.js';
import type { NarOptions, NarStage } from './prepare.js';
import type { SmallNarOptions } from './small-pool.js';

/** Below this many small paths, starting worker threads costs more than it saves. */
export const SMALL_POOL_MIN_PATHS = 64;
/**
 * One core is the main thread's, which puts NARs in the cache; the others prepare them. Each
 * worker is a V8 heap of its own (some 30 MB), so no more than there are cores to run them.
 */
export function smallNarWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Enough to keep the workers and the writer busy; a slow remote cache holds at most this much. */
const WINDOW_PATHS = 1024;
const WINDOW_NAR_BYTES = 64 << 20;

export class PreparedWindow {
  private paths = 0;
  private narBytes = 0;
  private readonly inside = new Set<string>();

  admits(info: PathInfo): boolean {
    if (this.paths === 0) return true;
    return this.paths < WINDOW_PATHS && this.narBytes + info.narSize <= WINDOW_NAR_BYTES;
  }

  add(info: PathInfo): void {
    this.inside.add(info.path);
    this.paths++;
    this.narBytes += info.narSize;
  }

  /** Harmless for a path that never entered (a large one uploaded directly). */
  remove(info: PathInfo): void {
    if (!this.inside.delete(info.path)) return;
    this.paths--;
    this.narBytes -= info.narSize;
  }
}

/** Only what can cross to a worker thread: no callbacks. */
export function plainNarOptions(options: Omit<NarOptions, 'zstdWorkers' | 'onNarBytes' | 'observeNar'>, stage: NarStage): SmallNarOptions {
  return {
    stage,
    compression: options.compression,
    compressionLevel: options.compressionLevel,
    zstdWorkers: 1,
    omitDeriver: options.omitDeriver,
    listing: options.listing,
  };
}
