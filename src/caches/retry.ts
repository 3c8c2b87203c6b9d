import { setTimeout as sleep } from 'node:timers/promises';
import { UserError, messageOf } from '../errors.js';
import { redactSecrets } from '../redact.js';
import { causeChain } from '../util/cause-chain.js';

/**
 * A response with a status the caller did not expect. `url` is shown to the user, so it is
 * given without credentials; `retryAfterMs` is the server's Retry-After, when it sent one.
 */
export class HttpStatusError extends Error {
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly retryAfterMs: number | undefined;

  constructor(
    method: string,
    url: string,
    status: number,
    options: { retryAfterMs?: number | undefined; detail?: string | undefined } = {},
  ) {
    const detail = options.detail ? `: ${options.detail}` : '';
    super(redactSecrets(`${method} ${url} answered ${status}${detail}`));
    this.name = 'HttpStatusError';
    this.status = status;
    this.method = method;
    this.url = url;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export interface RetryOptions {
  /** The first backoff ceiling; each retry doubles it up to capMs. */
  baseMs?: number;
  capMs?: number;
  /** Total time one request may spend, retries and waits included, before we give up. */
  budgetMs?: number;
  log?: (line: string) => void;
}

export const DEFAULT_RETRY: Required<Omit<RetryOptions, 'log'>> = { baseMs: 1000, capMs: 15_000, budgetMs: 90_000 };

/** Connection failures that a later attempt may not meet: the server restarted, a proxy hiccuped. */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'TimeoutError',
  'RequestTimeout',
]);

/** undici errors that are our own mistakes, not the network's: retrying cannot help. */
const UNDICI_PERMANENT = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_INVALID_RETURN_VALUE',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_ABORTED',
]);

/** AWS SDK error names that mean "try again later". */
const RETRYABLE_AWS_NAMES = new Set([
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'TimeoutError',
]);

// 423 Locked: a WebDAV server (rclone) refuses a PUT while another upload of the same file, such as
// the same NAR from a twin path, is still being written; it passes once that one is done.
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408 || status === 423;
}

/** True for 5xx, 429, 408, 423, timeouts and dropped connections, looking through `cause` chains. */
export function isRetryable(error: unknown): boolean {
  for (const fields of causeChain(error)) {
    if (fields instanceof UserError) return false;
    if (fields instanceof HttpStatusError) return retryableStatus(fields.status);
    const status = fields.$metadata?.httpStatusCode;
    if (typeof status === 'number' && status >= 400) return retryableStatus(status);
    if (typeof fields.code === 'string') {
      if (RETRYABLE_CODES.has(fields.code)) return true;
      if (fields.code.startsWith('UND_ERR_')) return !UNDICI_PERMANENT.has(fields.code);
    }
    if (typeof fields.name === 'string' && RETRYABLE_AWS_NAMES.has(fields.name)) return true;
    // Node's stream machinery reports a socket closed under us with this message and no code.
    if (typeof fields.message === 'string' && /socket hang up|other side closed|socket closed/i.test(fields.message)) return true;
  }
  return false;
}

/** Retry-After is either delay seconds or an HTTP date (RFC 9110 section 10.2.3). */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Cloudflare answers origin failures with a problem-details body carrying `retry_after`
 * (seconds) instead of the Retry-After header; cachix 1.11 (Retry.hs) honours both, for
 * `application/problem+json` and plain `application/json`.
 */
export function parseRetryAfterBody(contentType: string | string[] | undefined, body: string): number | undefined {
  const type = (Array.isArray(contentType) ? contentType[0] : contentType) ?? '';
  if (!/^application\/(problem\+)?json\b/i.test(type.trim())) return undefined;
  try {
    const seconds = (JSON.parse(body) as { retry_after?: unknown } | null)?.retry_after;
    return Number.isSafeInteger(seconds) ? (seconds as number) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** A server's wait is honoured up to this (cachix: maxRetryAfterMicros), so a buggy one cannot park us. */
export const MAX_RETRY_AFTER_MS = 120_000;

/** The wait a server asked for, capped; undefined when the backoff decides. */
export function serverWaitMs(error: unknown): number | undefined {
  let wait: number | undefined;
  if (error instanceof HttpStatusError) wait = error.retryAfterMs;
  else {
    const response = (error as { $response?: { headers?: Record<string, string> } } | undefined)?.$response;
    wait = parseRetryAfter(response?.headers?.['retry-after']);
  }
  // Zero or a date in the past: the backoff decides, as in cachix.
  return wait === undefined || wait <= 0 ? undefined : Math.min(wait, MAX_RETRY_AFTER_MS);
}

const defaultLog = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * Runs `attempt` until it succeeds, it fails with an error that retrying cannot fix (thrown as
 * is, at once), or the time budget is spent. Waits are exponential with full jitter (AWS's
 * "Exponential Backoff And Jitter"): many clients failing together do not retry together. A
 * server's Retry-After replaces the jittered wait. No new attempt starts once the budget would be
 * passed, so one request ends within the budget plus one attempt's timeout (headers/body timeouts
 * bound that). `attempt` must start from scratch each call
 * (re-open the NAR stream), since a failed attempt may have sent part of a body.
 */
export async function withRetry<T>(what: string, attempt: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const baseMs = options.baseMs ?? DEFAULT_RETRY.baseMs;
  const capMs = options.capMs ?? DEFAULT_RETRY.capMs;
  const budgetMs = options.budgetMs ?? DEFAULT_RETRY.budgetMs;
  const log = options.log ?? defaultLog;
  const started = Date.now();
  for (let attemptNumber = 1; ; attemptNumber++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isRetryable(error)) throw error;
      const ceiling = Math.min(capMs, baseMs * 2 ** (attemptNumber - 1));
      const waitMs = serverWaitMs(error) ?? Math.round(Math.random() * ceiling);
      const elapsedMs = Date.now() - started;
      if (elapsedMs + waitMs > budgetMs) {
        throw new UserError(
          redactSecrets(`${what} failed ${attemptNumber} times in ${Math.round(elapsedMs / 1000)} s; last error: ${messageOf(error)}`),
          'the server kept failing or was unreachable; try again later, or check the server and the network',
          1,
        );
      }
      log(redactSecrets(`${what}: ${messageOf(error)}; retry ${attemptNumber} in ${(waitMs / 1000).toFixed(1)} s`));
      await sleep(waitMs);
    }
  }
}

export interface WholeRetryOptions {
  retries?: number;
  delayMs?: number;
  log?: (line: string) => void;
}

/** cachix 1.11's retryAll (Retry.hs): a whole operation again, 3 more times, 5 s apart. */
export const DEFAULT_WHOLE_RETRY = { retries: 3, delayMs: 5000 };

/**
 * Runs a whole operation (one path's upload) again when it fails with anything but a UserError,
 * which is final (as cachix's CachixException is). Per-request retries run inside each attempt
 * and end in a UserError when their budget is spent, so the two do not multiply.
 */
export async function withWholeRetry<T>(what: string, attempt: () => Promise<T>, options: WholeRetryOptions = {}): Promise<T> {
  const retries = options.retries ?? DEFAULT_WHOLE_RETRY.retries;
  const delayMs = options.delayMs ?? DEFAULT_WHOLE_RETRY.delayMs;
  const log = options.log ?? defaultLog;
  for (let retry = 1; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof UserError || retry > retries) throw error;
      log(redactSecrets(`${what}: ${messageOf(error)}; trying the whole upload again (${retry} of ${retries}) in ${delayMs / 1000} s`));
      await sleep(delayMs);
    }
  }
}
