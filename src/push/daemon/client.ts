// `daemon push`, `stop` and `doctor` as clients of a running daemon (ours or cachix's), in cachix's
// protocol, with its keep-alive: a ping every interval, and a daemon that answers none for the
// timeout is given up on.
import { UserError } from '../../errors.js';
import {
  daemonErrorText,
  EXIT_UNSUPPORTED,
  parseDaemonMessage,
  readMessages,
  send,
  type ClientMessage,
  type DaemonDiagnostics,
  type DaemonExitStatus,
  type DaemonMessage,
  type PushEvent,
} from './protocol.js';
import { connectToDaemon } from './socket.js';

export interface KeepAlive {
  /** Seconds between pings; 0: none. cachix's default: 30. */
  keepAliveInterval: number;
  /** Seconds without a pong before the daemon is taken for stalled. cachix's default: 180. */
  keepAliveTimeout: number;
}

export const CACHIX_KEEP_ALIVE: KeepAlive = { keepAliveInterval: 30, keepAliveTimeout: 180 };

/**
 * Sends `request`, then hands each message to `handle` until it returns a value; DaemonError ends
 * the exchange as a refusal (exit 2, as cachix's client).
 */
async function converse<T>(
  socketPath: string,
  request: ClientMessage,
  keepAlive: KeepAlive,
  handle: (message: DaemonMessage) => T | undefined,
): Promise<T> {
  const connection = await connectToDaemon(socketPath);
  let stalled = false;
  let lastPong = Date.now();
  const pinger =
    keepAlive.keepAliveInterval > 0
      ? setInterval(() => {
          if (Date.now() - lastPong >= keepAlive.keepAliveTimeout * 1000) {
            stalled = true;
            connection.destroy();
          } else send(connection, { tag: 'ClientPing' });
        }, keepAlive.keepAliveInterval * 1000)
      : undefined;
  try {
    send(connection, request);
    for await (const line of readMessages(connection)) {
      const message = 'value' in line ? parseDaemonMessage(line.value) : undefined;
      if (!message) throw new UserError(`the daemon on ${socketPath} sent something that is not its protocol`, 'is it a cachix daemon?');
      if (message.tag === 'DaemonPong') {
        lastPong = Date.now();
        continue;
      }
      if (message.tag === 'DaemonError') {
        throw new UserError(`the daemon on ${socketPath} refused: ${daemonErrorText(message.contents)}`, undefined, EXIT_UNSUPPORTED);
      }
      const result = handle(message);
      if (result !== undefined) return result;
    }
  } catch (error) {
    if (!stalled) throw error;
  } finally {
    if (pinger) clearInterval(pinger);
    connection.destroy();
  }
  if (stalled) {
    throw new UserError(
      `the daemon on ${socketPath} answered no ping for ${keepAlive.keepAliveTimeout} s`,
      'it may be stopped or overloaded; see its log (--keep-alive-timeout SECONDS waits longer)',
    );
  }
  throw new UserError(
    `the daemon on ${socketPath} closed the connection before answering`,
    'see its log; it may have been stopped or killed',
  );
}

/** Hands paths to the daemon without waiting (cachix's `daemon push` without --wait). */
export async function handOver(socketPath: string, storePaths: string[]): Promise<void> {
  const connection = await connectToDaemon(socketPath);
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.end(`${JSON.stringify({ tag: 'ClientPushRequest', contents: { storePaths, subscribeToUpdates: false } })}\n`, resolve);
  });
}

export interface PushOutcome {
  failed: Array<{ path: string; why: string }>;
  invalid: Array<{ path: string; why: string }>;
}

/** Hands paths to the daemon and follows their events until PushFinished. */
export async function pushAndWait(
  socketPath: string,
  storePaths: string[],
  keepAlive: KeepAlive,
  onEvent: (event: PushEvent) => void,
): Promise<PushOutcome> {
  const outcome: PushOutcome = { failed: [], invalid: [] };
  let pushId: string | undefined;
  return converse(socketPath, { tag: 'ClientPushRequest', contents: { storePaths, subscribeToUpdates: true } }, keepAlive, (message) => {
    if (message.tag === 'DaemonExit') throw exitBeforeFinish(socketPath, message.contents);
    if (message.tag !== 'DaemonPushEvent') return undefined;
    const event = message.contents;
    // One request per connection: its events carry one id.
    pushId ??= event.eventPushId;
    if (event.eventPushId !== pushId) return undefined;
    onEvent(event);
    const { eventMessage } = event;
    if (eventMessage.tag === 'PushStorePathFailed') outcome.failed.push({ path: eventMessage.contents[0], why: eventMessage.contents[1] });
    if (eventMessage.tag === 'PushStorePathInvalid')
      outcome.invalid.push({ path: eventMessage.contents[0], why: eventMessage.contents[1] });
    return eventMessage.tag === 'PushFinished' ? outcome : undefined;
  });
}

function exitBeforeFinish(socketPath: string, status: DaemonExitStatus): UserError {
  const why = status.exitMessage ? `: ${status.exitMessage}` : '';
  return new UserError(
    `the daemon on ${socketPath} stopped (exit ${status.exitCode}) before it finished this push${why}`,
    'start it again and push again',
  );
}

/** Asks the daemon to push what it has and exit; returns its DaemonExit. */
export async function requestStop(socketPath: string, keepAlive: KeepAlive): Promise<DaemonExitStatus> {
  return converse(socketPath, { tag: 'ClientStop' }, keepAlive, (message) => (message.tag === 'DaemonExit' ? message.contents : undefined));
}

/** The daemon's cache, key and whether its server answers (cachix's ClientDiagnosticsRequest). */
export async function requestDiagnostics(socketPath: string, keepAlive: KeepAlive): Promise<DaemonDiagnostics> {
  return converse(socketPath, { tag: 'ClientDiagnosticsRequest' }, keepAlive, (message) =>
    message.tag === 'DaemonDiagnosticsResult' ? message.contents : undefined,
  );
}
