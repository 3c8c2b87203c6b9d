import { describe, expect, it } from 'vitest';
import { AdaptivePace, isThrottling } from '../../src/caches/pacing.js';
import { HttpStatusError } from '../../src/caches/retry.js';

/** An SDK error as the AWS SDK throws it for S3's throttling answer. */
function slowDown(): Error {
  return Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
}

/** A request that ends when the test says so, and how many run at once. */
class Requests {
  running = 0;
  most = 0;
  private readonly finishers: Array<(error?: Error) => void> = [];

  start(pace: AdaptivePace): Promise<unknown> {
    return pace
      .run(
        () =>
          new Promise<void>((resolve, reject) => {
            this.running++;
            this.most = Math.max(this.most, this.running);
            this.finishers.push((error) => {
              this.running--;
              if (error) reject(error);
              else resolve();
            });
          }),
      )
      .catch(() => undefined);
  }

  async finish(error?: Error): Promise<void> {
    this.finishers.shift()!(error);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await new Promise((resolve) => setImmediate(resolve));
}

describe('pacing requests to one server by its throttling answers', () => {
  it('throttling is 503 (SlowDown) and 429, not other failures', () => {
    expect(isThrottling(slowDown())).toBe(true);
    expect(isThrottling(new HttpStatusError('PUT', 'http://x/a', 429))).toBe(true);
    expect(isThrottling(new HttpStatusError('PUT', 'http://x/a', 500))).toBe(false);
    expect(isThrottling(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(false);
  });

  it('a burst of SlowDown halves what runs at once (once per burst), and a quiet spell raises it back', async () => {
    let now = 0;
    const lines: string[] = [];
    const pace = new AdaptivePace({ maxInFlight: 8, quietMs: 1000, server: 's3://b', log: (line) => lines.push(line), now: () => now });
    const requests = new Requests();
    const all: Promise<unknown>[] = [];
    for (let index = 0; index < 40; index++) all.push(requests.start(pace));
    await settle();
    expect(requests.running).toBe(8);
    // Eight requests in flight all refused: one cut, not eight.
    for (let index = 0; index < 8; index++) await requests.finish(slowDown());
    await settle();
    expect(pace.allowed).toBe(4);
    expect(requests.running).toBe(4);
    expect(lines).toEqual(['s3://b asked us to slow down (HTTP 503 SlowDown): at most 4 requests at once (was 8)']);
    // A new refusal from a request started after the cut cuts again.
    await requests.finish(slowDown());
    await settle();
    expect(pace.allowed).toBe(2);
    // Requests already running go on; none starts until fewer than two run.
    expect(requests.running).toBe(3);
    await requests.finish();
    await requests.finish();
    await settle();
    expect(requests.running).toBe(2);
    // Quiet for a while: steps back up to 8 as requests finish well.
    for (let step = 0; step < 6; step++) {
      now += 1000;
      await requests.finish();
      await settle();
    }
    expect(pace.allowed).toBe(8);
    expect(lines.at(-1)).toBe('s3://b has not throttled us for 1 s: back to 8 requests at once');
    while (requests.running > 0) await requests.finish();
    await Promise.all(all);
  });

  it("a server's Retry-After holds every new request until then", async () => {
    let now = 0;
    const pace = new AdaptivePace({ maxInFlight: 4, server: 's3://b', log: () => {}, now: () => now });
    pace.holdFor(60);
    let ran = false;
    const started = Date.now();
    const request = pace.run(async () => void (ran = true));
    await settle();
    expect(ran).toBe(false);
    now = 60;
    await request;
    expect(ran).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });
});
