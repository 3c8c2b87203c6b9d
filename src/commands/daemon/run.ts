import type { Context } from '../../context.js';
import { serveUntilStopped, startDaemon, yieldToBuilds } from '../../push/daemon/server.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';
import { preparePush, type PushFlags } from '../../push/prepare.js';

/** `cachix daemon run CACHE [--socket PATH]`: pushes what it is handed until stopped; exit 1 if any path failed. */
export async function run(context: Context, cacheName: string, flags: PushFlags & { socket?: string }): Promise<number> {
  const socketPath = flags.socket ?? defaultSocketPath(context.env);
  yieldToBuilds();
  const prepared = await preparePush(context, cacheName, flags);
  const daemon = await startDaemon(prepared, socketPath);
  const log = (line: string): void => prepared.progress.log(line);
  log(`cachix daemon for ${prepared.cacheName} listening on ${daemon.socketPath}`);
  log(`post-build-hook: ${daemon.hookScriptPath} (in nix.conf: post-build-hook = ${daemon.hookScriptPath})`);
  const totals = await serveUntilStopped(daemon, log);
  return totals.failed > 0 ? 1 : 0;
}
