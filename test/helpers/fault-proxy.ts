import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './loopback.js';

/** What the proxy does to a request a rule matches. */
export type FaultAction =
  /** Answer with this status (and headers) instead of forwarding. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, but cut both connections after this many request body bytes. */
  | { kind: 'drop'; afterBytes: number }
  /** Wait, then forward. */
  | { kind: 'delay'; ms: number }
  /** Cut the connection before anything reaches the server or is answered. */
  | { kind: 'reset' };

export interface FaultRule {
  method?: string;
  /** Matches the request path (a substring, or a RegExp). */
  path?: string | RegExp;
  /** How many matching requests this rule applies to; then it is used up (Infinity: never). */
  times?: number;
  /** Applies to a matching request only with this chance (drawn from the proxy's `random`). */
  probability?: number;
  /** Applies only once the proxy has seen this many requests in all: a burst later in a run. */
  afterRequests?: number;
  action: FaultAction;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The status the client saw; undefined when the connection was dropped. */
  status: number | undefined;
  fault: FaultAction['kind'] | undefined;
  bodyBytes: number;
  contentType: string | undefined;
  contentLength: string | undefined;
  authorization: string | undefined;
  startedAt: number;
  /** When the upstream finished answering (for a PUT: the file is stored), or the fault was served; 0 until then. */
  completedAt: number;
}

export interface FaultProxy {
  url: string;
  /** Every request in order of arrival, filled in as it completes. */
  requests: RecordedRequest[];
  addRule(rule: FaultRule): void;
  /** Forgets every rule: from now on the proxy only forwards. */
  clearRules(): void;
  stop(): Promise<void>;
}

function matches(rule: FaultRule, method: string, path: string): boolean {
  if (rule.method && rule.method !== method) return false;
  if (rule.path === undefined) return true;
  return typeof rule.path === 'string' ? path.includes(rule.path) : rule.path.test(path);
}

/**
 * A small HTTP proxy in front of a real server that misbehaves on cue, one scripted rule at a
 * time, and records every request so tests can check order (no narinfo before its NAR).
 */
export async function startFaultProxy(
  upstream: string,
  options: {
    preserveHost?: boolean;
    random?: () => number;
    /** The path (with query) sent upstream for a request's path; the record keeps what the client sent. */
    forwardPath?: (path: string) => string;
  } = {},
): Promise<FaultProxy> {
  const random = options.random ?? Math.random;
  const target = new URL(upstream);
  const rules: (FaultRule & { remaining: number })[] = [];
  const requests: RecordedRequest[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, dropAfter?: number): void => {
    const upstreamRequest = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: options.forwardPath ? options.forwardPath(req.url ?? '/') : req.url,
      // S3 signatures cover the Host header: a proxy in front of s3rver must pass it unchanged.
      headers: options.preserveHost ? req.headers : { ...req.headers, host: target.host },
    });
    upstreamRequest.on('response', (upstreamResponse) => {
      res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
      upstreamResponse.pipe(res);
      upstreamResponse.on('end', () => {
        record.status = upstreamResponse.statusCode;
        record.completedAt = Date.now();
      });
    });
    upstreamRequest.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      if (dropAfter !== undefined && record.bodyBytes + chunk.length >= dropAfter) {
        upstreamRequest.write(chunk.subarray(0, Math.max(0, dropAfter - record.bodyBytes)));
        record.bodyBytes = dropAfter;
        record.completedAt = Date.now();
        upstreamRequest.destroy();
        req.socket.destroy();
        return;
      }
      record.bodyBytes += chunk.length;
      if (!upstreamRequest.write(chunk)) {
        req.pause();
        upstreamRequest.once('drain', () => req.resume());
      }
    });
    req.on('end', () => upstreamRequest.end());
    // A client that dies mid-request (a killed push) must not leave the upstream waiting for the
    // rest of a body forever: that connection would keep the real server from closing.
    req.on('close', () => {
      if (!req.complete) upstreamRequest.destroy();
    });
  };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const record: RecordedRequest = {
      method,
      path,
      status: undefined,
      fault: undefined,
      bodyBytes: 0,
      contentType: req.headers['content-type'],
      contentLength: req.headers['content-length'],
      authorization: req.headers.authorization,
      startedAt: Date.now(),
      completedAt: 0,
    };
    requests.push(record);
    const rule = rules.find(
      (candidate) =>
        candidate.remaining > 0 &&
        matches(candidate, method, path) &&
        requests.length > (candidate.afterRequests ?? 0) &&
        (candidate.probability === undefined || random() < candidate.probability),
    );
    if (rule) rule.remaining--;
    const action = rule?.action;
    record.fault = action?.kind;
    if (action?.kind === 'reset') {
      record.completedAt = Date.now();
      req.socket.destroy();
    } else if (action?.kind === 'status') {
      req.resume();
      req.on('end', () => {
        res.writeHead(action.status, { 'content-type': 'text/plain', ...action.headers });
        res.end(action.body ?? `fault proxy: ${action.status}\n`);
        record.status = action.status;
        record.completedAt = Date.now();
      });
    } else if (action?.kind === 'delay') {
      req.pause();
      setTimeout(() => {
        if (req.socket.destroyed) return; // the client gave up (or was killed) meanwhile
        forward(req, res, record);
        req.resume(); // paused above; adding a 'data' listener does not undo an explicit pause
      }, action.ms).unref();
    } else {
      forward(req, res, record, action?.kind === 'drop' ? action.afterBytes : undefined);
    }
  });
  const listening = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${listening.port}`,
    requests,
    addRule(rule) {
      rules.push({ ...rule, remaining: rule.times ?? 1 });
    },
    clearRules() {
      rules.length = 0;
    },
    stop: listening.stop,
  };
}
