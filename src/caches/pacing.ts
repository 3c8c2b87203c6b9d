// How many requests we send one server at once, learned from the server itself, as the AWS SDK's
// adaptive retry mode does: a throttling answer (503 SlowDown, 429, any 503) halves what we allow,
// a server's Retry-After holds every new request until then, and a quiet spell with no throttling
// raises the allowance again step by step, up to where it started. Only requests that started
// after the last cut can cut again, so one burst of refusals halves once, not once per request.

import { causeChain } from '../util/cause-chain.js';

export interface PaceOptions {
  /** The most requests at once, and where we start. */
  maxInFlight: number;
  /** Without a throttling answer for this long, one step up. */
  quietMs?: number;
  /** Where the server is named in the log line. */
  server: string;
  log: (line: string) => void;
  now?: () => number;
}

export const DEFAULT_QUIET_MS = 5000;

/** True for what S3 and HTTP servers answer when they want fewer requests: 503 (SlowDown) and 429. */
export function isThrottling(error: unknown): boolean {
  for (const fields of causeChain(error)) {
    const status = (fields as { status?: unknown }).status ?? fields.$metadata?.httpStatusCode;
    if (status === 503 || status === 429) return true;
    if (fields.name === 'SlowDown' || fields.name === 'TooManyRequests' || fields.name === 'ThrottlingException') return true;
  }
  return false;
}

/** `HTTP 503 SlowDown`, `HTTP 429`: what the server answered, for the log. */
function describeThrottling(error: unknown): string {
  for (const fields of causeChain(error)) {
    const status = (fields as { status?: unknown }).status ?? fields.$metadata?.httpStatusCode;
    if (typeof status !== 'number') continue;
    const name = typeof fields.name === 'string' && !/^(Error|HttpStatusError|\d+)$/.test(fields.name) ? ` ${fields.name}` : '';
    return `HTTP ${status}${name}`;
  }
  return 'throttled';
}

export class AdaptivePace {
  private limit: number;
  private inFlight = 0;
  private readonly waiters: Array<() => void> = [];
  /** Counts the cuts: a request started before the latest one cannot cut again. */
  private cuts = 0;
  private lastChangeAt: number;
  private heldUntil = 0;
  private readonly quietMs: number;
  private readonly now: () => number;
  /** How often the server throttled us, for a summary. */
  throttled = 0;

  constructor(private readonly options: PaceOptions) {
    this.limit = options.maxInFlight;
    this.quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    this.now = options.now ?? Date.now;
    this.lastChangeAt = this.now();
  }

  /** Requests allowed at once right now. */
  get allowed(): number {
    return this.limit;
  }

  /** Runs one request (one attempt: a retry comes back through here) within the allowance. */
  async run<T>(request: () => Promise<T>): Promise<T> {
    await this.acquire();
    const cutsAtStart = this.cuts;
    try {
      return await request();
    } catch (error) {
      if (isThrottling(error)) this.slowDown(cutsAtStart, error);
      throw error;
    } finally {
      this.release();
    }
  }

  /** The server asked for a pause (Retry-After): nothing new starts before then. */
  holdFor(ms: number): void {
    this.heldUntil = Math.max(this.heldUntil, this.now() + ms);
  }

  private async acquire(): Promise<void> {
    for (;;) {
      const wait = this.heldUntil - this.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.maybeSpeedUp();
      if (this.inFlight < this.limit) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.maybeSpeedUp();
    // Wake as many as may now start; each checks again (the limit may have changed meanwhile).
    for (let free = this.limit - this.inFlight; free > 0 && this.waiters.length > 0; free--) this.waiters.shift()!();
  }

  private slowDown(cutsAtStart: number, error: unknown): void {
    this.throttled++;
    if (cutsAtStart < this.cuts) return;
    this.cuts++;
    // Half of what was really in flight: an allowance we were not using would halve into nothing.
    const before = Math.min(this.limit, this.inFlight);
    this.limit = Math.max(1, Math.floor(before / 2));
    this.lastChangeAt = this.now();
    if (this.limit < before) {
      this.options.log(
        `${this.options.server} asked us to slow down (${describeThrottling(error)}): at most ${this.limit} requests at once (was ${before})`,
      );
    }
  }

  private maybeSpeedUp(): void {
    if (this.limit >= this.options.maxInFlight) return;
    const now = this.now();
    if (now - this.lastChangeAt < this.quietMs) return;
    this.limit = Math.min(this.options.maxInFlight, this.limit + Math.max(1, Math.floor(this.limit / 2)));
    this.lastChangeAt = now;
    if (this.limit === this.options.maxInFlight) {
      this.options.log(`${this.options.server} has not throttled us for ${this.quietMs / 1000} s: back to ${this.limit} requests at once`);
    }
  }
}
