// The push daemon's wire format: cachix's (its src/Cachix/Daemon/PROTOCOL.md and Protocol.hs),
// so cachix's own client works against our daemon and ours against cachix's. One JSON object per
// line over a unix socket, in aeson's default encoding of Haskell sum types: `{"tag": NAME}` for a
// constructor without fields, `contents` holding the bare value for one field (never a one-element
// array), a positional array for several, an object for a record.
import type { Socket } from 'node:net';

export interface PushRequest {
  storePaths: string[];
  /** true: this connection hears the request's DaemonPushEvents, ending with PushFinished. */
  subscribeToUpdates: boolean;
}

export type ClientMessage =
  { tag: 'ClientPushRequest'; contents: PushRequest } | { tag: 'ClientStop' } | { tag: 'ClientPing' } | { tag: 'ClientDiagnosticsRequest' };

export type PushEventMessage =
  | { tag: 'PushStarted' }
  /** [path, NAR size, retry status] */
  | { tag: 'PushStorePathAttempt'; contents: [string, number, { retryCount: number }] }
  /** [path, bytes so far, bytes since the last event] */
  | { tag: 'PushStorePathProgress'; contents: [string, number, number] }
  | { tag: 'PushStorePathDone'; contents: string }
  /** [path, why] */
  | { tag: 'PushStorePathFailed'; contents: [string, string] }
  | { tag: 'PushStorePathSkipped'; contents: string }
  /** [path, why]: refused before any upload (not a valid store path). */
  | { tag: 'PushStorePathInvalid'; contents: [string, string] }
  /** Once per request, after every other event of it. */
  | { tag: 'PushFinished' };

export interface PushEvent {
  /** ISO 8601, UTC. */
  eventTimestamp: string;
  /** A UUID per request, the same on all its events. */
  eventPushId: string;
  eventMessage: PushEventMessage;
}

export interface DaemonDiagnostics {
  diagCacheName: string;
  diagCacheUri: string;
  diagCachePublic: boolean;
  diagHasSigningKey: boolean;
  diagAuthOk: boolean;
  diagError: string | null;
}

export interface DaemonExitStatus {
  exitCode: number;
  exitMessage: string | null;
}

export type DaemonMessage =
  | { tag: 'DaemonPong' }
  | { tag: 'DaemonExit'; contents: DaemonExitStatus }
  | { tag: 'DaemonPushEvent'; contents: PushEvent }
  /**
   * cachix's DaemonErrorMessage has one constructor (UnsupportedCommand Text), which aeson encodes
   * as its bare field: `contents` is the message. PROTOCOL.md shows it tagged; both are read.
   */
  | { tag: 'DaemonError'; contents: string }
  | { tag: 'DaemonDiagnosticsResult'; contents: DaemonDiagnostics };

/** cachix's exit codes in DaemonExit: some paths failed (DaemonPushFailure). */
export const EXIT_PUSH_FAILURE = 3;
/** cachix's exit code for an unsupported command (a refused remote stop). */
export const EXIT_UNSUPPORTED = 2;

/** A line longer than this is not a message from a client; the connection is dropped. */
const MAX_LINE_BYTES = 64 << 20;

export function send(socket: Socket, message: ClientMessage | DaemonMessage): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(message)}\n`);
}

export function pushEvent(eventPushId: string, eventMessage: PushEventMessage): DaemonMessage {
  return { tag: 'DaemonPushEvent', contents: { eventTimestamp: new Date().toISOString(), eventPushId, eventMessage } };
}

/** The text of a DaemonError, in either of the shapes cachix's sources show. */
export function daemonErrorText(contents: unknown): string {
  if (typeof contents === 'string') return contents;
  if (isObject(contents) && typeof contents.contents === 'string') return contents.contents;
  return JSON.stringify(contents);
}

/** A parsed line: the value, or why it is not JSON. */
export type Line = { value: unknown } | { invalid: string };

/** The lines on a connection, parsed; ends when the peer closes. A line that is not JSON is reported, not fatal. */
export async function* readMessages(socket: Socket): AsyncGenerator<Line> {
  let buffered = '';
  for await (const chunk of socket) {
    buffered += String(chunk);
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!line.trim()) continue;
      try {
        yield { value: JSON.parse(line) as unknown };
      } catch (error) {
        yield { invalid: (error as Error).message };
      }
    }
    if (buffered.length > MAX_LINE_BYTES) throw new Error('a message longer than 64 MiB');
  }
}

/** A client's message checked against cachix's shapes; a string saying what is wrong otherwise. */
export function parseClientMessage(value: unknown): ClientMessage | string {
  if (!isObject(value) || typeof value.tag !== 'string') return 'not a tagged message';
  switch (value.tag) {
    case 'ClientStop':
    case 'ClientPing':
    case 'ClientDiagnosticsRequest':
      return { tag: value.tag };
    case 'ClientPushRequest': {
      const request = value.contents;
      if (
        !isObject(request) ||
        !Array.isArray(request.storePaths) ||
        !request.storePaths.every((path) => typeof path === 'string') ||
        typeof request.subscribeToUpdates !== 'boolean'
      )
        return 'ClientPushRequest needs contents {storePaths: [string], subscribeToUpdates: bool}';
      return {
        tag: 'ClientPushRequest',
        contents: { storePaths: request.storePaths as string[], subscribeToUpdates: request.subscribeToUpdates },
      };
    }
    default:
      return `Unknown message type ${value.tag}`;
  }
}

/** A daemon's message, as far as a client needs to trust it: a known tag. */
export function parseDaemonMessage(value: unknown): DaemonMessage | undefined {
  if (!isObject(value) || typeof value.tag !== 'string') return undefined;
  const known = ['DaemonPong', 'DaemonExit', 'DaemonPushEvent', 'DaemonError', 'DaemonDiagnosticsResult'];
  return known.includes(value.tag) ? (value as unknown as DaemonMessage) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
