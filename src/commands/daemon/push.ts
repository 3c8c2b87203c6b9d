import type { Context, InputStream } from '../../context.js';
import { UserError } from '../../errors.js';
import { requestPush } from '../../push/daemon/client.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';
import { queryValidPaths } from '../../store/path-info.js';
import { resolveStorePaths } from '../../store/resolve-paths.js';

async function readPathsFromStdin(stdin: InputStream): Promise<string[]> {
  if (stdin.isTTY) throw new UserError('no store paths given', 'pass them as arguments or pipe them in');
  let text = '';
  for await (const chunk of stdin) text += chunk;
  return text.split(/\s+/).filter(Boolean);
}

/** `cachix daemon push [--wait] PATHS...`: hands paths to the running daemon. */
export async function run(context: Context, pathArgs: string[], flags: { socket?: string; wait?: boolean }): Promise<number> {
  const given = pathArgs.length > 0 ? pathArgs : await readPathsFromStdin(context.stdin);
  if (given.length === 0) throw new UserError('no store paths given', 'pass them as arguments or pipe them in');
  const storePaths = await resolveStorePaths(given, context.storeDir);
  const valid = new Set(await queryValidPaths(storePaths));
  const invalid = storePaths.filter((path) => !valid.has(path));
  if (invalid.length > 0) {
    const more = invalid.length > 1 ? ` (and ${invalid.length - 1} more)` : '';
    throw new UserError(`${invalid[0]}${more} is not a valid path in the Nix store`, 'build or fetch it first, then push');
  }
  const socketPath = flags.socket ?? defaultSocketPath(context.env);
  const failed = await requestPush(socketPath, storePaths, flags.wait === true);
  if (!flags.wait) {
    context.stderr.write(`handed ${storePaths.length} paths to the daemon on ${socketPath}\n`);
    return 0;
  }
  if (failed.length > 0) {
    context.stderr.write(`${failed.length} of ${storePaths.length} paths could not be pushed: ${failed.join(' ')}\n`);
    return 1;
  }
  context.stderr.write(`the daemon pushed ${storePaths.length} paths with their closures\n`);
  return 0;
}
