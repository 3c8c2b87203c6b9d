import type { Context } from '../context.js';
import { removeTrackedFilesSync } from '../util/temp-files.js';
import type { PushTally } from './push-options.js';
import { onStopSignals, STOP_SIGNALS } from './stop-signals.js';

/**
 * Until the returned undo is called, SIGINT/SIGTERM remove this push's spool files, say how far
 * it got and exit (130/143). What is in the cache stays consistent: a narinfo is only ever
 * written after its NAR, so the next push uploads exactly the rest.
 */
export function stopCleanlyOnSignal(tally: PushTally, context: Pick<Context, 'stderr'>, flushProgress?: () => void): () => void {
  return onStopSignals((signal) => {
    // Whatever the display or the report throws, the process still ends.
    try {
      removeTrackedFilesSync();
      flushProgress?.();
      context.stderr.write(`\ninterrupted: ${tally.pushed} of ${tally.planned} paths pushed; run again to finish\n`);
    } finally {
      process.exit(STOP_SIGNALS[signal]);
    }
  });
}
