import type { Context } from '../../context.js';
import { requestStop } from '../../push/daemon/client.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';

/** `cachix daemon stop`: the daemon drains its queue and exits; its totals are printed here; exit 1 if any path failed. */
export async function run(context: Context, flags: { socket?: string }): Promise<number> {
  const { totals, summary } = await requestStop(flags.socket ?? defaultSocketPath(context.env));
  context.stderr.write(`${summary}\n`);
  return totals.failed > 0 ? 1 : 0;
}
