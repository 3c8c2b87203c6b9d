// `daemon push` and `daemon stop` as a client of a running daemon.
import { UserError } from '../../errors.js';
import { readMessages, send, type DaemonMessage } from './protocol.js';
import { connectToDaemon } from './socket.js';
import type { QueueTotals } from '../watch/queue.js';

async function exchange(
  socketPath: string,
  request: Parameters<typeof send>[1],
  until: (message: DaemonMessage) => boolean,
): Promise<DaemonMessage[]> {
  const connection = await connectToDaemon(socketPath);
  const received: DaemonMessage[] = [];
  try {
    send(connection, request);
    for await (const raw of readMessages(connection)) {
      const message = raw as DaemonMessage;
      if ('error' in message) throw new UserError(`the daemon on ${socketPath} refused: ${message.error}`);
      received.push(message);
      if (until(message)) return received;
    }
  } finally {
    connection.destroy();
  }
  throw new UserError(
    `the daemon on ${socketPath} closed the connection before answering`,
    'see its log; it may have been stopped or killed',
  );
}

/** Hands paths to the daemon; with `wait`, returns the paths it could not push once all are settled. */
export async function requestPush(socketPath: string, paths: string[], wait: boolean): Promise<string[]> {
  const replies = await exchange(socketPath, { push: { paths, wait } }, (message) => (wait ? 'done' in message : 'queued' in message));
  const done = replies.find((message) => 'done' in message);
  return done && 'done' in done ? done.done.failed : [];
}

/** Asks the daemon to push what it has and exit; returns its totals. */
export async function requestStop(socketPath: string): Promise<{ totals: QueueTotals; summary: string }> {
  const replies = await exchange(socketPath, { stop: {} }, (message) => 'stopped' in message);
  const stopped = replies.find((message) => 'stopped' in message);
  if (!stopped || !('stopped' in stopped)) throw new Error('no stop reply');
  return stopped.stopped;
}
