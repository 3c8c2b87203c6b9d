import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  HttpStatusError,
  isRetryable,
  parseRetryAfter,
  parseRetryAfterBody,
  serverWaitMs,
  withRetry,
  withWholeRetry,
} from '../../src/caches/retry.js';

const fast = { baseMs: 5, capMs: 20, budgetMs: 2_000 };

/** An attempt that fails with the given errors in turn, then returns 'done'. */
function failing(errors: unknown[]): { attempt: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    attempt: async () => {
      const error = errors[calls++];
      if (error !== undefined) throw error;
      return 'done';
    },
    calls: () => calls,
  };
}

function coded(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('isRetryable', () => {
  it('retries server errors, 429, 408 and 423 (a WebDAV file locked by a concurrent upload), and not client errors', () => {
    for (const status of [500, 502, 503, 504, 429, 408, 423])
      expect(isRetryable(new HttpStatusError('PUT', 'http://x/', status))).toBe(true);
    for (const status of [400, 401, 403, 404, 405, 413]) expect(isRetryable(new HttpStatusError('PUT', 'http://x/', status))).toBe(false);
  });

  it('retries dropped connections and timeouts, also when wrapped as a cause', () => {
    for (const code of [
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'UND_ERR_SOCKET',
      'UND_ERR_HEADERS_TIMEOUT',
      'UND_ERR_BODY_TIMEOUT',
      'UND_ERR_CONNECT_TIMEOUT',
    ]) {
      expect(isRetryable(coded(code)), code).toBe(true);
    }
    expect(isRetryable(new TypeError('fetch failed', { cause: coded('ECONNRESET') }))).toBe(true);
    expect(isRetryable(new Error('socket hang up'))).toBe(true);
  });

  it('does not retry our own mistakes or user errors', () => {
    expect(isRetryable(coded('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'))).toBe(false);
    expect(isRetryable(coded('ENOENT'))).toBe(false);
    expect(isRetryable(new UserError('no'))).toBe(false);
    expect(isRetryable(new TypeError('x is not a function'))).toBe(false);
  });

  it('reads AWS SDK errors by their HTTP status', () => {
    expect(isRetryable(Object.assign(new Error('slow'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }))).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  it('takes delay seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('withRetry', () => {
  it('retries 503 until success and logs one line per retry', async () => {
    const lines: string[] = [];
    const { attempt, calls } = failing([
      new HttpStatusError('PUT', 'http://x/nar/a', 503),
      new HttpStatusError('PUT', 'http://x/nar/a', 503),
    ]);
    await expect(withRetry('PUT nar/a', attempt, { ...fast, log: (line) => lines.push(line) })).resolves.toBe('done');
    expect(calls()).toBe(3);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^PUT nar\/a: PUT http:\/\/x\/nar\/a answered 503; retry 1 in \d+\.\d s$/);
  });

  it('waits as long as Retry-After says', async () => {
    const { attempt } = failing([new HttpStatusError('GET', 'http://x/', 429, { retryAfterMs: 300 })]);
    const started = Date.now();
    await withRetry('GET', attempt, { ...fast, log: () => {} });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('fails at once on what retrying cannot fix', async () => {
    const refused = new HttpStatusError('PUT', 'http://x/', 401);
    const { attempt, calls } = failing([refused]);
    await expect(withRetry('PUT', attempt, fast)).rejects.toBe(refused);
    expect(calls()).toBe(1);
  });

  it('gives up when the budget is spent, as a UserError naming the last failure', async () => {
    const errors = Array.from({ length: 1000 }, () => coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'));
    const { attempt, calls } = failing(errors);
    const started = Date.now();
    const error = await withRetry('GET nix-cache-info', attempt, { baseMs: 20, capMs: 40, budgetMs: 300, log: () => {} }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(/^GET nix-cache-info failed \d+ times in 0 s; last error: connect ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(3000); // 1000 failures at 20 ms would take 20 s
    expect(calls()).toBeGreaterThan(3);
  });

  it('gives up at once when Retry-After is beyond the budget', async () => {
    const { attempt, calls } = failing([new HttpStatusError('GET', 'http://x/', 503, { retryAfterMs: 60_000 })]);
    await expect(withRetry('GET', attempt, fast)).rejects.toBeInstanceOf(UserError);
    expect(calls()).toBe(1);
  });

  it('never shows a token in its log lines or errors', async () => {
    const lines: string[] = [];
    const { attempt } = failing([new Error('sent Authorization: Bearer supersecrettoken123 and failed: socket hang up')]);
    await withRetry('GET', attempt, { ...fast, log: (line) => lines.push(line) });
    expect(lines.join('\n')).not.toContain('supersecrettoken123');
  });
});

describe("cachix 1.11's retry rules", () => {
  it("reads Cloudflare's retry_after from a JSON or problem+json body, nothing else", () => {
    expect(parseRetryAfterBody('application/problem+json', '{"status":503,"retry_after":7}')).toBe(7000);
    expect(parseRetryAfterBody('application/json; charset=utf-8', '{"retry_after":2}')).toBe(2000);
    expect(parseRetryAfterBody('text/html', '{"retry_after":2}')).toBeUndefined();
    expect(parseRetryAfterBody('application/json', '<html>')).toBeUndefined();
    expect(parseRetryAfterBody('application/json', '{"retry_after":"soon"}')).toBeUndefined();
  });

  it('caps a server wait at 120 s, and leaves zero or a past date to the backoff', () => {
    expect(serverWaitMs(new HttpStatusError('GET', 'http://x/', 503, { retryAfterMs: 600_000 }))).toBe(120_000);
    expect(serverWaitMs(new HttpStatusError('GET', 'http://x/', 503, { retryAfterMs: 7000 }))).toBe(7000);
    expect(serverWaitMs(new HttpStatusError('GET', 'http://x/', 503, { retryAfterMs: 0 }))).toBeUndefined();
    expect(serverWaitMs(new HttpStatusError('GET', 'http://x/', 503))).toBeUndefined();
  });

  it('tries a whole operation 3 more times, but never after a UserError', async () => {
    let calls = 0;
    await expect(
      withWholeRetry('p', async () => Promise.reject(new Error(`attempt ${++calls}`)), { delayMs: 1, log: () => {} }),
    ).rejects.toThrow('attempt 4');
    expect(calls).toBe(4);
    calls = 0;
    await expect(withWholeRetry('p', async () => Promise.reject(new UserError(`final ${++calls}`)), { delayMs: 1 })).rejects.toThrow(
      'final 1',
    );
    expect(calls).toBe(1);
  });
});
