import type { PreparedPush } from '../prepare.js';
import { queryValidPaths } from '../../store/path-info.js';
import { removeTrackedFilesSync } from '../../util/temp-files.js';
import { watchStore } from '../../store/watch.js';
import { pushPaths } from '../pipeline.js';
import { warnLine, type Progress } from '../progress.js';
import { formatBytes } from '../../util/quantities.js';
import { PushQueue, type QueueTotals } from './queue.js';
import { filteredSummary } from '../path-filter.js';
import { onStopSignals, STOP_SIGNALS } from '../stop-signals.js';

/** Exit codes for being stopped at once by a second signal, as shells report them (128 + n). */
/** A store watcher feeding a push queue: the part watch-store and watch-exec share. */
export interface WatchSession {
  storeDir: string;
  cacheName: string;
  progress: Progress;
  /** Stops watching, pushes everything already noticed, prints the summary. */
  finish(): Promise<QueueTotals>;
  /** Noticed or queued paths that are not pushed yet: what stopping at once leaves behind. */
  unpushed(): number;
}

export function startWatchSession(prepared: PreparedPush, storeDir: string): WatchSession {
  const { cacheName, cache, pushOptions, progress } = prepared;
  // What the queue, the watcher and the inbox say is a failure or a warning: --quiet keeps it.
  const log = (line: string): void => warnLine(progress, line);
  const queue = new PushQueue({
    push: (paths) => pushPaths(cache, paths, pushOptions, progress),
    stillValid: queryValidPaths,
    log,
  });
  const watcher = watchStore({ storeDir, queryValid: queryValidPaths, onValidPaths: (paths) => queue.add(paths), log });
  return {
    storeDir,
    cacheName,
    progress,
    async finish() {
      await watcher.close();
      const totals = await queue.drain();
      progress.finish(watchSummaryLine(totals));
      await cache.close?.();
      return totals;
    },
    unpushed: () => watcher.waiting + queue.unpushed,
  };
}

export function watchSummaryLine(totals: QueueTotals): string {
  const failed = totals.failed > 0 ? `; ${totals.failed} could not be pushed` : '';
  return `pushed ${totals.pushed} paths (${formatBytes(totals.fileBytes)})${failed}${filteredSummary(totals)}`;
}

/**
 * Finishes the session; a signal meanwhile means "stop now": it says what is left behind and
 * exits at once, since uploads in flight cannot be called back quickly.
 */
export async function finishUnlessStopped(session: WatchSession): Promise<QueueTotals> {
  const removeListeners = onStopSignals((signal) => {
    removeTrackedFilesSync();
    warnLine(session.progress, `${signal} again: stopping now; ${session.unpushed()} paths were left unpushed; run again to finish`);
    process.exit(STOP_SIGNALS[signal]);
  });
  try {
    return await session.finish();
  } finally {
    removeListeners();
  }
}
