import type { Context } from '../../context.js';
import type { NarinfoQueryOptions } from '../../push/daemon/core.js';
import { EXIT_PUSH_FAILURE } from '../../push/daemon/protocol.js';
import { serveUntilStopped, startDaemon, yieldToBuilds } from '../../push/daemon/server.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';
import { preparePush, type PushFlags } from '../../push/prepare.js';

export interface DaemonRunFlags extends PushFlags {
  socket?: string;
  /** --no-remote-stop gives false. */
  remoteStop?: boolean;
  narinfoBatchSize: number;
  narinfoBatchTimeout: number;
  narinfoCacheTtl: number;
  narinfoMaxCacheSize: number;
}

/** `cachix daemon run CACHE [--socket PATH]`: pushes what it is handed until stopped; exit 3 (as cachix) if any path failed. */
export async function run(context: Context, cacheName: string, flags: DaemonRunFlags): Promise<number> {
  const socketPath = flags.socket ?? defaultSocketPath(context.env);
  yieldToBuilds();
  const prepared = await preparePush(context, cacheName, flags);
  const narinfo: NarinfoQueryOptions = {
    batchSize: flags.narinfoBatchSize,
    batchTimeoutSeconds: flags.narinfoBatchTimeout,
    cacheTtlSeconds: flags.narinfoCacheTtl,
    maxCacheSize: flags.narinfoMaxCacheSize,
  };
  const daemon = await startDaemon(prepared, socketPath, { allowRemoteStop: flags.remoteStop !== false, narinfo });
  const log = (line: string): void => prepared.progress.log(line);
  log(`cachix daemon for ${prepared.cacheName} listening on ${daemon.socketPath}`);
  log(hookAdvice(daemon.hookScriptPath, socketPath));
  const totals = await serveUntilStopped(daemon, log);
  return totals.failed > 0 ? EXIT_PUSH_FAILURE : 0;
}

/**
 * Root's nix-daemon runs the hook as root: a hook file the daemon's user can rewrite would let
 * that user run anything as root. Only root's own daemon may point nix.conf at its file.
 */
function hookAdvice(hookScriptPath: string, socketPath: string): string {
  if (process.getuid?.() === 0) return `post-build-hook: ${hookScriptPath} (in nix.conf: post-build-hook = ${hookScriptPath})`;
  return (
    `post-build-hook: as root, install a copy only root can change: cachix daemon hook-script --socket ${socketPath} > /etc/nix/cachix-hook; ` +
    'chmod 755 /etc/nix/cachix-hook; then in nix.conf: post-build-hook = /etc/nix/cachix-hook'
  );
}
