import type { Context } from '../../context.js';
import { UserError } from '../../errors.js';
import { requestDiagnostics, type KeepAlive } from '../../push/daemon/client.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';

/**
 * `cachix daemon doctor`: asks the running daemon (ours or cachix's) which cache it pushes to,
 * whether it signs, and whether the cache's server accepts it now; exit 1 when it does not answer
 * or its server refuses it.
 */
export async function run(context: Context, flags: KeepAlive & { socket?: string }): Promise<number> {
  const socketPath = flags.socket ?? defaultSocketPath(context.env);
  const diagnostics = await requestDiagnostics(socketPath, flags).catch((error: unknown) => {
    if (error instanceof UserError) throw new UserError(`daemon: ${error.message}`, error.hint ?? 'start it: cachix daemon run CACHE');
    throw error;
  });
  const lines = [
    `ok    daemon: answers on ${socketPath}`,
    `ok    cache: ${diagnostics.diagCacheName} (${diagnostics.diagCacheUri}, ${diagnostics.diagCachePublic ? 'public' : 'private'})`,
    diagnostics.diagHasSigningKey
      ? 'ok    signing key: the daemon signs what it pushes'
      : 'warn  signing key: none; the server signs (attic, or a cachix cache with a token only)',
    diagnostics.diagAuthOk
      ? 'ok    server: answers and accepts the daemon'
      : `fail  server: ${diagnostics.diagError ?? 'refused'}\n      fix: check the server and the daemon's credentials, then restart the daemon`,
  ];
  context.stdout.write(`${lines.join('\n')}\n`);
  return diagnostics.diagAuthOk ? 0 : 1;
}
