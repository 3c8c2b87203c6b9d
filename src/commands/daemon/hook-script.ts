import type { Context } from '../../context.js';
import { hookScript, inboxFor } from '../../push/daemon/hook.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';

/** `cachix daemon hook-script`: prints the sh post-build-hook for this socket, to install where Nix runs it. */
export async function run(context: Context, flags: { socket?: string }): Promise<void> {
  context.stdout.write(hookScript(inboxFor(flags.socket ?? defaultSocketPath(context.env))));
}
