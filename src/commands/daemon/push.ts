import type { Context, InputStream } from '../../context.js';
import { UserError } from '../../errors.js';
import { handOver, pushAndWait, type KeepAlive } from '../../push/daemon/client.js';
import { EXIT_PUSH_FAILURE } from '../../push/daemon/protocol.js';
import { defaultSocketPath } from '../../push/daemon/socket.js';
import { queryValidPaths } from '../../store/path-info.js';
import { resolveStorePaths } from '../../store/resolve-paths.js';

async function readPathsFromStdin(stdin: InputStream): Promise<string[]> {
  if (stdin.isTTY) throw new UserError('no store paths given', 'pass them as arguments or pipe them in');
  let text = '';
  for await (const chunk of stdin) text += chunk;
  return text.split(/\s+/).filter(Boolean);
}

export interface DaemonPushFlags extends KeepAlive {
  socket?: string;
  wait?: boolean;
  quiet?: boolean;
}

/**
 * `cachix daemon push [--wait] PATHS...`: hands paths to the running daemon; with --wait, follows
 * their events to PushFinished and exits 3 (as cachix) if any path failed.
 */
export async function run(context: Context, pathArgs: string[], flags: DaemonPushFlags): Promise<number> {
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
  if (!flags.wait) {
    await handOver(socketPath, storePaths);
    context.stderr.write(`handed ${storePaths.length} paths to the daemon on ${socketPath}\n`);
    return 0;
  }
  let pushed = 0;
  let skipped = 0;
  const say = (line: string): void => void (flags.quiet || context.stderr.write(`${line}\n`));
  const outcome = await pushAndWait(socketPath, storePaths, flags, ({ eventMessage: event }) => {
    if (event.tag === 'PushStorePathDone') {
      pushed++;
      say(`pushed ${event.contents}`);
    } else if (event.tag === 'PushStorePathSkipped') skipped++;
    else if (event.tag === 'PushStorePathFailed') context.stderr.write(`failed to push ${event.contents[0]}: ${event.contents[1]}\n`);
    else if (event.tag === 'PushStorePathInvalid') context.stderr.write(`not pushing ${event.contents[0]}: ${event.contents[1]}\n`);
  });
  const failed = outcome.failed.length + outcome.invalid.length;
  const tail = failed > 0 ? `; ${failed} could not be pushed` : '';
  context.stderr.write(`the daemon pushed ${pushed} paths, ${skipped} were already in the cache${tail}\n`);
  return failed > 0 ? EXIT_PUSH_FAILURE : 0;
}
