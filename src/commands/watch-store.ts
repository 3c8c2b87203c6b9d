import type { Context } from '../context.js';
import { finishUnlessStopped, startWatchSession } from '../push/watch/session.js';
import { onStopSignals, type StopSignal } from '../push/stop-signals.js';
import { preparePush, type PushFlags } from '../push/prepare.js';

export async function run(context: Context, cacheName: string, flags: PushFlags): Promise<number> {
  const session = startWatchSession(await preparePush(context, cacheName, flags), context.storeDir);
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
