// The daemon's --narinfo-batch-size and --narinfo-batch-timeout as the push queue carries them
// out: paths arriving within the wait share one push (one closure query, one cache lookup), a
// full batch leaves at once, and a drain does not wait. The push itself is the queue's injected
// function here: what is under test is when it is called and with what.
import { describe, expect, it } from 'vitest';
import type { PushSummary } from '../../../src/push/push-options.js';
import { PushQueue } from '../../../src/push/watch/queue.js';
import { TtlSet } from '../../../src/util/ttl-set.js';
import { waitUntil } from '../../helpers/wait.js';

const storePath = (index: number): string => `/nix/store/${index.toString().padStart(32, '0')}-p${index}`;
const summary = (paths: string[]): PushSummary => ({ pushed: paths.length, skipped: 0, failed: 0, narBytes: 0, fileBytes: 0 });

function recordingQueue(batchSize: number, batchWaitMs: number): { queue: PushQueue; batches: string[][] } {
  const batches: string[][] = [];
  const queue = new PushQueue({
    push: async (paths) => (batches.push(paths), summary(paths)),
    stillValid: async (paths) => paths,
    log: () => undefined,
    batchSize,
    batchWaitMs,
  });
  return { queue, batches };
}

describe('PushQueue batching (--narinfo-batch-size, --narinfo-batch-timeout)', () => {
  it('paths handed over apart within the wait go out in one batch', async () => {
    const { queue, batches } = recordingQueue(100, 2_000);
    await queue.add([storePath(1)]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await queue.add([storePath(2)]);
    await waitUntil('the batch', () => batches.length > 0, 10_000);
    expect(batches).toEqual([[storePath(1), storePath(2)]]);
  });

  it('without a wait, a path handed over later is its own batch', async () => {
    const { queue, batches } = recordingQueue(100, 0);
    await queue.add([storePath(1)]);
    await waitUntil('the first batch', () => batches.length > 0, 10_000);
    await queue.add([storePath(2)]);
    await waitUntil('the second batch', () => batches.length > 1, 10_000);
    expect(batches).toEqual([[storePath(1)], [storePath(2)]]);
  });

  it('a full batch leaves at once, however long the wait; a drain does not wait either', async () => {
    const { queue, batches } = recordingQueue(2, 600_000);
    const started = Date.now();
    await queue.add([storePath(1), storePath(2), storePath(3)]);
    await waitUntil('the full batch', () => batches.length > 0, 10_000);
    expect(batches[0]).toEqual([storePath(1), storePath(2)]);
    await queue.drain();
    expect(batches).toEqual([[storePath(1), storePath(2)], [storePath(3)]]);
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});

describe('TtlSet (--narinfo-cache-ttl, --narinfo-max-cache-size)', () => {
  it('remembers a key for its time, no longer; 0 remembers nothing; at most maxEntries', () => {
    let now = 0;
    const set = new TtlSet(300_000, 0, () => now);
    set.add('a');
    now = 299_999;
    expect(set.has('a')).toBe(true);
    now = 300_000;
    expect(set.has('a')).toBe(false);
    const none = new TtlSet(0, 0, () => now);
    none.add('a');
    expect(none.has('a')).toBe(false);
    const small = new TtlSet(300_000, 2, () => now);
    for (const key of ['a', 'b', 'c']) small.add(key);
    expect([small.has('a'), small.has('b'), small.has('c'), small.size]).toEqual([false, true, true, 2]);
  });
});
