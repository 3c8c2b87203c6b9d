import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Context } from '../context.js';
import { EXIT_USAGE, UserError, messageOf } from '../errors.js';
import type { PushFlags } from '../push/prepare.js';
import { finishUnlessStopped, startWatchSession } from '../push/watch/session.js';
import { preparePush } from '../push/prepare.js';
import { startHookSession } from '../push/daemon/hook-session.js';
import { chooseWatchMode, type WatchMode } from '../push/watch/mode.js';

/** Shells report a command that cannot be found or run with 127 (documented exit code). */
const EXIT_CANNOT_RUN = 127;
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/**
 * Nix deletes a path's lock before it exits, but the inotify event and the child's exit reach
 * us in no fixed order; this much time lets the last events in before the watcher closes.
 */
const SETTLE_MS = 300;

/** The child's exit as a shell reports it: its code, or 128 + the signal that killed it. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

/** Runs the child with our terminal; signals we get are passed on, so it decides how to stop. */
function runChild(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(command, args, { stdio: 'inherit', env });
    const forwarders = FORWARDED_SIGNALS.map((signal) => {
      const forward = (): void => {
        child.kill(signal);
      };
      process.on(signal, forward);
      return [signal, forward] as const;
    });
    const stopForwarding = (): void => {
      for (const [signal, forward] of forwarders) process.off(signal, forward);
    };
    child.on('error', (error) => {
      stopForwarding();
      reject(error);
    });
    child.on('exit', (code, signal) => {
      stopForwarding();
      resolve(exitCodeOf(code, signal));
    });
  });
}

export async function run(
  context: Context,
  cacheName: string,
  commandArg: string,
  argsAfter: string[],
  flags: PushFlags & { watchMode?: WatchMode },
): Promise<number> {
  // Commander's passThroughOptions hands us the `--` of `watch-exec CACHE -- CMD ARGS` as the command.
  const [command, ...args] = commandArg === '--' ? argsAfter : [commandArg, ...argsAfter];
  if (command === undefined) {
    throw new UserError('no command given after --', 'e.g. cachix watch-exec CACHE -- nix-build', EXIT_USAGE);
  }
  const prepared = await preparePush(context, cacheName, flags);
  const storeDir = context.storeDir;
  const watch = await chooseWatchMode(flags.watchMode, context.env);
  const hookSession = watch.mode === 'post-build-hook' ? await startHookSession(prepared, storeDir, context.env) : undefined;
  const session = hookSession ?? startWatchSession(prepared, storeDir);
  session.progress.log(
    watch.mode === 'post-build-hook'
      ? `pushing what ${command} builds to ${session.cacheName}, handed over by Nix's post-build-hook (${watch.why})`
      : `watching ${session.storeDir} while ${command} runs, pushing to ${session.cacheName}${flags.watchMode === 'auto' ? ` (${watch.why})` : ''}`,
  );
  let commandExitCode: number;
  try {
    commandExitCode = await runChild(command, args, hookSession?.childEnv ?? context.env);
  } catch (error) {
    await finishUnlessStopped(session);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOEXEC')
      throw new UserError(
        `cannot run ${command}: it is not an executable program (${code})`,
        `make it executable (chmod +x ${command}), or give the program that runs it: cachix watch-exec CACHE -- sh ${command}`,
        EXIT_CANNOT_RUN,
      );
    const notFound = code === 'ENOENT';
    throw new UserError(
      notFound ? `cannot run ${command}: command not found` : `cannot run ${command}: ${messageOf(error)}`,
      notFound ? 'check the name and PATH; put the command after --, e.g. cachix watch-exec CACHE -- nix-build' : undefined,
      EXIT_CANNOT_RUN,
    );
  }
  if (!hookSession) await delay(SETTLE_MS);
  if (session.unpushed() > 0) session.progress.log(`${command} exited with ${commandExitCode}; pushing what it built`);
  const totals = await finishUnlessStopped(session);
  // A command that succeeded while its results could not be pushed is still a failure.
  return commandExitCode === 0 && totals.failed > 0 ? 1 : commandExitCode;
}
