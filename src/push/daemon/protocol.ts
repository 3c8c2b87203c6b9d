// The push daemon's wire format: one JSON object per line over its unix socket.
import type { Socket } from 'node:net';
import type { QueueTotals } from '../watch/queue.js';

export type ClientMessage = { push: { paths: string[]; wait: boolean } } | { stop: Record<string, never> };

export type DaemonMessage =
  { queued: number } | { done: { failed: string[] } } | { stopped: { totals: QueueTotals; summary: string } } | { error: string };

/** A line longer than this is not a message from our client; the connection is dropped. */
const MAX_LINE_BYTES = 64 << 20;

export function send(socket: Socket, message: ClientMessage | DaemonMessage): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
}

/** The messages on a connection, parsed; ends when the peer closes. */
export async function* readMessages(socket: Socket): AsyncGenerator<unknown> {
  let buffered = '';
  for await (const chunk of socket) {
    buffered += String(chunk);
    if (buffered.length > MAX_LINE_BYTES) throw new Error('a message longer than 64 MiB');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim()) yield JSON.parse(line) as unknown;
    }
  }
}
