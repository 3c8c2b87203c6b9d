// The push daemon: a unix socket for `daemon push` and `daemon stop`, and the hook's inbox,
// both feeding one PushDaemonCore. Stopping drains the queue and reports totals to the client
// that asked (or to the terminal, on a signal).
import { unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { getPriority, setPriority } from 'node:os';
import { messageOf } from '../../errors.js';
import { isStorePath } from '../../nix/store-path.js';
import { PushDaemonCore } from './core.js';
import { hookScriptPathFor, inboxFor, prepareInbox, writeHookScript } from './hook.js';
import { HookInbox } from './inbox.js';
import { readMessages, send, type ClientMessage } from './protocol.js';
import { listenOnSocket } from './socket.js';
import type { PreparedPush } from '../prepare.js';
import type { QueueTotals } from '../watch/queue.js';
import { onStopSignals, STOP_SIGNALS } from '../stop-signals.js';
import { watchSummaryLine } from '../watch/session.js';

export interface RunningDaemon {
  socketPath: string;
  hookScriptPath: string;
  /** Resolves once stopped (by a client or `stop()`) and drained. */
  finished: Promise<QueueTotals>;
  stop(): void;
  unpushed(): number;
}

export async function startDaemon(prepared: PreparedPush, socketPath: string): Promise<RunningDaemon> {
  const log = (line: string): void => prepared.progress.log(line);
  const inboxDir = inboxFor(socketPath);
  const hookScriptPath = hookScriptPathFor(socketPath);
  const core = new PushDaemonCore(prepared, log);
  const inbox = new HookInbox(inboxDir, (jobs) => core.takeJobs(jobs), log);
  core.inbox = inbox;

  const stopRequesters: Socket[] = [];
  let stopping: (() => void) | undefined;
  let isStopping = false;
  const stopRequested = new Promise<void>((resolve) => (stopping = resolve));
  const stop = (): void => {
    isStopping = true;
    stopping?.();
  };
  const connections = new Set<Socket>();
  const server: Server = createServer((connection) => {
    connections.add(connection);
    connection.on('close', () => connections.delete(connection));
    connection.on('error', () => undefined);
    void serve(connection);
  });

  async function serve(connection: Socket): Promise<void> {
    try {
      for await (const raw of readMessages(connection)) {
        const message = raw as Partial<ClientMessage>;
        if ('push' in message && message.push && Array.isArray(message.push.paths)) {
          const paths = message.push.paths.filter((path): path is string => typeof path === 'string' && isStorePath(path));
          if (paths.length !== message.push.paths.length) {
            send(connection, { error: 'some paths are not store paths' });
            continue;
          }
          if (isStopping) {
            send(connection, { error: 'the daemon is stopping: start it again, then push' });
            continue;
          }
          const waiting = core.submit(paths, message.push.wait === true);
          send(connection, { queued: paths.length });
          if (message.push.wait === true) send(connection, { done: { failed: await waiting } });
          else await waiting;
        } else if ('stop' in message) {
          stopRequesters.push(connection);
          stop();
        } else send(connection, { error: 'unknown message' });
      }
    } catch (error) {
      send(connection, { error: messageOf(error) });
      connection.destroy();
    }
  }

  // The socket first: it claims the path, so two daemons never share one inbox.
  await listenOnSocket(server, socketPath, log);
  try {
    await prepareInbox(inboxDir);
    await writeHookScript(hookScriptPath, inboxDir);
  } catch (error) {
    await new Promise((resolve) => server.close(resolve));
    throw error;
  }
  inbox.start();

  const finished = (async (): Promise<QueueTotals> => {
    await stopRequested;
    inbox.close();
    await inbox.scan();
    const totals = await core.drain();
    const summary = watchSummaryLine(totals);
    prepared.progress.finish(summary);
    for (const connection of stopRequesters) send(connection, { stopped: { totals, summary } });
    for (const connection of connections) connection.end();
    // Listening until drained: a second daemon started meanwhile is told this one still runs.
    server.close();
    await unlink(socketPath).catch(() => undefined);
    await prepared.cache.close?.();
    return totals;
  })();
  return { socketPath, hookScriptPath, finished, stop, unpushed: () => core.unpushed };
}

/**
 * The daemon uploads beside running builds, which Nix makes wait for nothing else: on a busy
 * machine its hashing and compressing took CPU from them (a 50-build run went from 1.19x to
 * 1.09x its time without the hook). At nice 10 (inherited by the compression threads and Nix
 * processes it starts later) builds come first.
 */
export function yieldToBuilds(): void {
  try {
    setPriority(Math.max(getPriority(), 10));
  } catch {
    // Not allowed or not supported: the daemon works the same, only less politely.
  }
}

/** Until a client stops it or a signal comes (drain); a second signal stops at once. */
export async function serveUntilStopped(daemon: RunningDaemon, log: (line: string) => void): Promise<QueueTotals> {
  let signalled = false;
  const removeListeners = onStopSignals((signal) => {
    if (signalled) {
      log(`${signal} again: stopping now; ${daemon.unpushed()} paths were left unpushed`);
      // The signal's own default action ends the process at once; process.exit alone waits for
      // Node's I/O threads, and one stuck in a read would keep the daemon alive.
      removeListeners();
      process.kill(process.pid, signal);
      process.exit(STOP_SIGNALS[signal]);
    }
    signalled = true;
    log(`${signal}: finishing ${daemon.unpushed()} queued paths (send ${signal} again to stop at once)`);
    daemon.stop();
  });
  try {
    return await daemon.finished;
  } finally {
    removeListeners();
  }
}
