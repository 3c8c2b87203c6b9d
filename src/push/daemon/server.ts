// The push daemon: a unix socket speaking cachix's protocol (protocol.ts) for clients, and the
// hook's inbox, both feeding one PushDaemonCore. Stopping drains the queue, prints the totals and
// tells every client DaemonExit.
import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { getPriority, setPriority } from 'node:os';
import { messageOf } from '../../errors.js';
import { PushDaemonCore, type NarinfoQueryOptions } from './core.js';
import { hookScriptPathFor, inboxFor, prepareInbox, writeHookScript } from './hook.js';
import { HookInbox } from './inbox.js';
import {
  EXIT_PUSH_FAILURE,
  parseClientMessage,
  pushEvent,
  readMessages,
  send,
  type DaemonDiagnostics,
  type DaemonMessage,
  type PushRequest,
} from './protocol.js';
import { listenOnSocket } from './socket.js';
import type { PreparedPush } from '../prepare.js';
import { warnLine } from '../progress.js';
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

export interface DaemonOptions {
  /** false (--no-remote-stop): a client's ClientStop is refused; only a signal stops the daemon. */
  allowRemoteStop: boolean;
  narinfo: NarinfoQueryOptions;
}

export async function startDaemon(prepared: PreparedPush, socketPath: string, options: DaemonOptions): Promise<RunningDaemon> {
  // What the inbox, the queue and the socket say is a failure or a warning: --quiet keeps it.
  const log = (line: string): void => warnLine(prepared.progress, line);
  const inboxDir = inboxFor(socketPath);
  const hookScriptPath = hookScriptPathFor(socketPath);
  const core = new PushDaemonCore(prepared, log, options.narinfo);
  const inbox = new HookInbox(inboxDir, (jobs) => core.takeJobs(jobs), log);
  core.inbox = inbox;

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
      for await (const line of readMessages(connection)) {
        if ('invalid' in line) {
          // As cachix: a line that is not JSON is logged and skipped; the connection goes on.
          log(`a client sent a line that is not JSON (${line.invalid}); ignored`);
          continue;
        }
        const message = parseClientMessage(line.value);
        if (typeof message === 'string') {
          send(connection, { tag: 'DaemonError', contents: message });
          continue;
        }
        switch (message.tag) {
          case 'ClientPing':
            send(connection, { tag: 'DaemonPong' });
            break;
          case 'ClientStop':
            if (options.allowRemoteStop) stop();
            else send(connection, { tag: 'DaemonError', contents: REMOTE_STOP_DISABLED });
            break;
          case 'ClientDiagnosticsRequest':
            send(connection, { tag: 'DaemonDiagnosticsResult', contents: await diagnose(prepared) });
            break;
          case 'ClientPushRequest':
            if (isStopping) send(connection, { tag: 'DaemonError', contents: 'the daemon is stopping: start it again, then push' });
            else void handlePush(connection, message.contents);
            break;
        }
      }
    } catch (error) {
      send(connection, { tag: 'DaemonError', contents: messageOf(error) });
      connection.destroy();
    }
  }

  async function handlePush(connection: Socket, request: PushRequest): Promise<void> {
    try {
      if (!request.subscribeToUpdates) return await core.submit(request.storePaths);
      const pushId = randomUUID();
      await core.request(request.storePaths, (event) => send(connection, pushEvent(pushId, event)));
    } catch (error) {
      log(`a push request failed: ${messageOf(error)}`);
      send(connection, { tag: 'DaemonError', contents: messageOf(error) });
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
    // As cachix: every client hears DaemonExit, 3 when paths failed; the message is our summary.
    const exit: DaemonMessage = {
      tag: 'DaemonExit',
      contents: { exitCode: totals.failed > 0 ? EXIT_PUSH_FAILURE : 0, exitMessage: summary },
    };
    for (const connection of connections) {
      send(connection, exit);
      connection.end();
    }
    // Listening until drained: a second daemon started meanwhile is told this one still runs.
    server.close();
    await unlink(socketPath).catch(() => undefined);
    await prepared.cache.close?.();
    return totals;
  })();
  return { socketPath, hookScriptPath, finished, stop, unpushed: () => core.unpushed };
}

/** cachix's words for a refused ClientStop. */
export const REMOTE_STOP_DISABLED = 'Remote stop is disabled on this daemon';

/** cachix's diagnostics: the cache, whether we sign, and whether the server answers us now. */
async function diagnose(prepared: PreparedPush): Promise<DaemonDiagnostics> {
  const { cache, cacheName, pushOptions } = prepared;
  let info;
  let error: string | null = null;
  try {
    info = await cache.info();
  } catch (failure) {
    error = messageOf(failure);
  }
  return {
    diagCacheName: cacheName,
    diagCacheUri: info?.substituterUrl ?? cache.description,
    diagCachePublic: info?.isPublic ?? false,
    diagHasSigningKey: pushOptions.signingKey !== undefined,
    diagAuthOk: error === null,
    diagError: error,
  };
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
