import type { Context } from '../../context.js';
import { UserError } from '../../errors.js';
import { inboxFor, writeHookJob } from '../../push/daemon/hook.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';

/**
 * `cachix daemon post-build-hook`: run by Nix after a build, hands DRV_PATH/OUT_PATHS to the
 * daemon's inbox. Prefer the generated sh script (`daemon hook-script`): Nix waits for the hook,
 * and starting Node costs about 0.2 s per build.
 */
export async function run(context: Context, flags: { socket?: string }): Promise<void> {
  const inbox = inboxFor(flags.socket ?? defaultSocketPath(context.env));
  try {
    await writeHookJob(inbox, context.env);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`cannot hand the build to the daemon: ${(error as Error).message}`, 'start it first: cachix daemon run CACHE');
  }
}
