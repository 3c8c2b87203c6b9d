import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** How long the condition may take before the test fails (default 60 s). */
  timeoutMs?: number;
  /** How often the condition is asked (default 50 ms). */
  intervalMs?: number;
  /** What to add to the timeout's message: the output seen so far, say. */
  details?: () => string;
}

/**
 * Waits for a condition the test cannot be told about by an event (a file appearing, a line on a
 * child's stderr, a request reaching a server), asking it every `intervalMs`: the wait ends as soon
 * as it holds, so no verdict depends on a guessed sleep. Returns the probe's first truthy value;
 * fails naming `what` when it does not come within `timeoutMs` (the third argument, or its option).
 */
export async function waitUntil<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  optionsOrTimeoutMs: WaitOptions | number = {},
): Promise<T> {
  const options = typeof optionsOrTimeoutMs === 'number' ? { timeoutMs: optionsOrTimeoutMs } : optionsOrTimeoutMs;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    // Truthy only: an empty string (a file read before its writer wrote) or 0 is not an answer yet.
    if (value) return value;
    if (Date.now() > deadline) {
      const details = options.details?.();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${details ? `\n${details}` : ''}`);
    }
    await delay(options.intervalMs ?? 50);
  }
}
