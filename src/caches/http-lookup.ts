// narinfo lookups for many paths at once: HEAD requests pipelined (HTTP/1.1) over a few kept-alive
// connections. A push that finds ten thousand paths already in the cache asks ten thousand HEADs,
// and one request through a general HTTP client costs far more CPU than the server spends
// answering it. A response to HEAD never has a body (RFC 9110, 9.3.2), so each one ends at its
// blank line and the stream needs no other framing. Only a plain 200 (present) or 403/404 (absent,
// as Nix reads them) is decided here; anything else (a redirect, 401, 5xx, a connection that
// keeps failing) is left to the caller's careful path, with its retries and its wording.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export interface PipelinedLookupOptions {
  /** The cache's public base URL, ending in '/'. */
  base: URL;
  authorization?: string | undefined;
  /** No byte from the server for this long: the connection is dropped and its questions asked again. */
  idleMs: number;
}

/** What was answered plainly; the caller asks anything in neither set the careful way. */
export interface PipelinedLookup {
  present: Set<string>;
  absent: Set<string>;
}

const CONNECTIONS = 4;
/** Questions on the wire per connection: a few kilobytes of requests, a few of answers. */
const IN_FLIGHT_PER_CONNECTION = 128;
/** Connections that die before answering anything, beyond which the rest is left undecided. */
const MAX_FRUITLESS_CONNECTIONS = CONNECTIONS * 2;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i;

export function lookupPipelined(hashParts: readonly string[], options: PipelinedLookupOptions): Promise<PipelinedLookup> {
  const { base } = options;
  const secure = base.protocol === 'https:';
  const host = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(base.port) || (secure ? 443 : 80);
  const headers =
    `Host: ${base.host}\r\nUser-Agent: cachix-any\r\n` +
    (options.authorization ? `Authorization: ${options.authorization}\r\n` : '') +
    '\r\n';
  const result: PipelinedLookup = { present: new Set(), absent: new Set() };
  // Questions not yet sent; those of a dropped connection go back to the front.
  const queue: string[] = [...hashParts];
  let open = 0;
  let fruitless = 0;
  let givenUp = false;

  return new Promise((resolve) => {
    const finishIfDone = (): void => {
      if (open > 0) return;
      if (queue.length > 0 && !givenUp) return startConnections();
      resolve(result);
    };

    const startConnections = (): void => {
      while (!givenUp && open < CONNECTIONS && queue.length > open * IN_FLIGHT_PER_CONNECTION) startConnection();
      if (open === 0) finishIfDone();
    };

    const startConnection = (): void => {
      open++;
      const socket: Socket = secure
        ? connectTls({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host, ALPNProtocols: ['http/1.1'] })
        : connectTcp({ host, port });
      const sent: string[] = [];
      let buffered = '';
      let answered = 0;
      let closing = false;

      const send = (): void => {
        let requests = '';
        while (!closing && sent.length < IN_FLIGHT_PER_CONNECTION && queue.length > 0) {
          const hashPart = queue.shift()!;
          sent.push(hashPart);
          requests += `HEAD ${base.pathname}${hashPart}.narinfo HTTP/1.1\r\n${headers}`;
        }
        if (requests) socket.write(requests, 'latin1');
        else if (sent.length === 0) socket.end();
      };

      const giveUp = (): void => {
        givenUp = true;
        socket.destroy();
      };

      socket.setEncoding('latin1');
      socket.setNoDelay(true);
      socket.setTimeout(options.idleMs, () => socket.destroy());
      socket.once(secure ? 'secureConnect' : 'connect', send);
      socket.on('data', (text: string) => {
        buffered += text;
        for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
          const head = buffered.slice(0, end);
          buffered = buffered.slice(end + 4);
          const status = STATUS_LINE.exec(head)?.[1];
          // Not HTTP/1.x, or a body where none may be: nothing more on this connection can be trusted.
          if (!status || sent.length === 0) return giveUp();
          if (status.startsWith('1')) continue; // informational: the real answer follows
          const hashPart = sent.shift()!;
          answered++;
          if (status === '200') result.present.add(hashPart);
          else if (status === '404' || status === '403') result.absent.add(hashPart);
          if (CONNECTION_CLOSE.test(head)) closing = true;
        }
        send();
      });
      socket.on('error', () => undefined); // 'close' follows, and sorts out what was left
      socket.on('close', () => {
        open--;
        // Unanswered questions are asked again: HEAD is safe to repeat. A server that closes
        // after so many requests (nginx's keepalive_requests) only costs a new connection.
        queue.unshift(...sent.splice(0));
        if (answered === 0 && ++fruitless >= MAX_FRUITLESS_CONNECTIONS) givenUp = true;
        finishIfDone();
      });
    };

    startConnections();
  });
}
