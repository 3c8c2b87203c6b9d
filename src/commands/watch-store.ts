import type { Context } from '../context.js';
import { DEFAULT_STORE_DIR } from '../nix/store-path.js';
import { pushPaths } from '../push/pipeline.js';
import { formatBytes, type Progress } from '../push/progress.js';
import { PushQueue, type QueueTotals } from '../push/queue.js';
import { queryValidPaths } from '../store/path-info.js';
import { watchStore } from '../store/watch.js';
import { preparePush, type PushFlags } from './push-setup.js';

/** Exit codes for being stopped at once by a second signal, as shells report them (128 + n). */
export const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;
export type StopSignal = keyof typeof STOP_SIGNALS;

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

export async function startWatchSession(context: Context, cacheNameOrUrl: string, flags: PushFlags): Promise<WatchSession> {
  const { opened, cache, pushOptions, progress } = await preparePush(context, cacheNameOrUrl, flags);
  const storeDir = context.env.NIX_STORE_DIR || DEFAULT_STORE_DIR;
  const log = (line: string): void => progress.log(line);
  const queue = new PushQueue({
    push: (paths) => pushPaths(cache, paths, pushOptions, progress),
    stillValid: queryValidPaths,
    log,
  });
  const watcher = watchStore({ storeDir, queryValid: queryValidPaths, onValidPaths: (paths) => queue.add(paths), log });
  return {
    storeDir,
    cacheName: opened.name,
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
  return `pushed ${totals.pushed} paths (${formatBytes(totals.fileBytes)})${failed}`;
}

/** Calls `handler` on every SIGINT or SIGTERM (which then no longer end the process); returns the undo. */
export function onStopSignals(handler: (signal: StopSignal) => void): () => void {
  const listeners = (Object.keys(STOP_SIGNALS) as StopSignal[]).map((signal) => {
    const listener = (): void => handler(signal);
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}

/**
 * Finishes the session; a signal meanwhile means "stop now": it says what is left behind and
 * exits at once, since uploads in flight cannot be called back quickly.
 */
export async function finishUnlessStopped(session: WatchSession): Promise<QueueTotals> {
  const removeListeners = onStopSignals((signal) => {
    session.progress.log(`${signal} again: stopping now; ${session.unpushed()} paths were left unpushed`);
    process.exit(STOP_SIGNALS[signal]);
  });
  try {
    return await session.finish();
  } finally {
    removeListeners();
  }
}

export async function run(context: Context, cacheName: string, flags: PushFlags): Promise<number> {
  const session = await startWatchSession(context, cacheName, flags);
  session.progress.log(`watching ${session.storeDir} for new paths, pushing to ${session.cacheName}`);
  const signal = await new Promise<StopSignal>((resolve) => {
    const removeListeners = onStopSignals((received) => {
      removeListeners();
      resolve(received);
    });
  });
  session.progress.log(`${signal}: finishing ${session.unpushed()} queued paths (send ${signal} again to stop at once)`);
  const totals = await finishUnlessStopped(session);
  return totals.failed > 0 ? 1 : 0;
}
