import type { Context } from '../../context.js';
import { requestStop, type KeepAlive } from '../../push/daemon/client.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';

/** `cachix daemon stop`: the daemon drains its queue and exits; its totals are printed here; its exit code (3: paths failed) is ours. */
export async function run(context: Context, flags: KeepAlive & { socket?: string }): Promise<number> {
  const exit = await requestStop(flags.socket ?? defaultSocketPath(context.env), flags);
  if (exit.exitMessage) context.stderr.write(`${exit.exitMessage}\n`);
  return exit.exitCode;
}
