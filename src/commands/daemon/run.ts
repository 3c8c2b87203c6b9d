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
  log(hookAdvice(daemon.hookScriptPath, socketPath));
  const totals = await serveUntilStopped(daemon, log);
  return totals.failed > 0 ? 1 : 0;
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
