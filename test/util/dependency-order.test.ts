import { describe, expect, it } from 'vitest';
import { inDependencyOrder, type Outcome } from '../../src/util/dependency-order.js';

/** A graph as `key: needs`, run with `limit`; each work item finishes after `delays[key]` turns of the event loop. */
async function runGraph(
  graph: Record<string, string[]>,
  limit: number,
  options: { fail?: string[]; delays?: Record<string, number>; keys?: string[] } = {},
): Promise<{ started: string[]; events: string[]; outcomes: Array<Outcome<string>>; maxRunning: number }> {
  const started: string[] = [];
  const events: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const outcomes = await inDependencyOrder(
    options.keys ?? Object.keys(graph),
    (key) => graph[key] ?? [],
    limit,
    async (key) => {
      started.push(key);
      events.push(`start ${key}`);
      running++;
      maxRunning = Math.max(maxRunning, running);
      for (let turn = 0; turn < (options.delays?.[key] ?? 1); turn++) await new Promise((resolve) => setImmediate(resolve));
      running--;
      events.push(`end ${key}`);
      if (options.fail?.includes(key)) throw new Error(`${key} failed`);
    },
  );
  return { started, events, outcomes, maxRunning };
}

/** Every key started only after each key it needs (among those run, itself aside) had finished. */
function expectNeedsFirst(graph: Record<string, string[]>, events: string[]): void {
  for (const key of Object.keys(graph)) {
    if (!events.includes(`start ${key}`)) continue;
    for (const need of graph[key]!) {
      if (need === key || !(need in graph)) continue;
      expect(events.indexOf(`end ${need}`), `${need} finished before ${key} started`).toBeGreaterThanOrEqual(0);
      expect(events.indexOf(`end ${need}`), `${need} finished before ${key} started`).toBeLessThan(events.indexOf(`start ${key}`));
    }
  }
}

describe('inDependencyOrder', () => {
  it('starts a key only once every key it needs is done (references before referrers)', async () => {
    // top needs mid1 and mid2, which need the leaves; leaf2 is slow, so mid2 waits for it while mid1 goes on.
    const graph = { top: ['mid1', 'mid2'], mid1: ['leaf1'], mid2: ['leaf1', 'leaf2'], leaf1: [], leaf2: [] };
    const { events, outcomes } = await runGraph(graph, 3, { delays: { leaf2: 5 } });
    expectNeedsFirst(graph, events);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(events.indexOf('start mid1')).toBeLessThan(events.indexOf('end leaf2'));
  });

  it('never runs more than the limit at once, and uses it', async () => {
    const graph = Object.fromEntries(Array.from({ length: 10 }, (_, index) => [`k${index}`, [] as string[]]));
    const { maxRunning, started } = await runGraph(graph, 3);
    expect(maxRunning).toBe(3);
    expect(started).toHaveLength(10);
  });

  it('keeps a stable order: keys ready together start in the order given', async () => {
    const graph = { c: [], a: ['c'], b: [], d: ['b'], e: [] };
    const first = await runGraph(graph, 1);
    expect(first.started).toEqual(['c', 'b', 'e', 'a', 'd']);
    const second = await runGraph(graph, 1);
    expect(second.started).toEqual(first.started);
  });

  it('counts references outside the keys, and a self-reference, as done', async () => {
    const graph = { lib: ['lib', 'elsewhere'], app: ['lib', 'app', 'gone'] };
    const { started, outcomes } = await runGraph(graph, 2);
    expect(started).toEqual(['lib', 'app']);
    expect(outcomes.every((outcome) => outcome.status === 'done')).toBe(true);
  });

  it('runs the members of a cycle, and what needs them after them', async () => {
    // c comes first but is not in the cycle: the cycle is broken at a, and c (needing a) still waits for it.
    const graph = { c: ['a'], a: ['b'], b: ['a'], free: [] };
    const { started, events, outcomes } = await runGraph(graph, 4);
    expect(
      outcomes
        .filter((outcome) => outcome.status === 'done')
        .map((outcome) => outcome.key)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'free']);
    expect(started).toEqual(['free', 'a', 'c', 'b']);
    expectNeedsFirst({ a: [], b: ['a'], c: ['a'] }, events);
  });

  it('a failed key blocks what needs it, directly or not, and nothing else', async () => {
    const graph = { base: [], mid: ['base'], top: ['mid'], other: [], cyc1: ['cyc2'], cyc2: ['cyc1'] };
    const { started, outcomes } = await runGraph(graph, 2, { fail: ['base', 'cyc1'] });
    const byKey = new Map(outcomes.map((outcome) => [outcome.key, outcome]));
    expect(byKey.get('base')).toMatchObject({ status: 'failed' });
    expect(byKey.get('mid')).toEqual({ key: 'mid', status: 'blocked', by: 'base' });
    expect(byKey.get('top')).toEqual({ key: 'top', status: 'blocked', by: 'base' });
    expect(byKey.get('other')).toEqual({ key: 'other', status: 'done' });
    expect(byKey.get('cyc1')).toMatchObject({ status: 'failed' });
    expect(byKey.get('cyc2')).toEqual({ key: 'cyc2', status: 'blocked', by: 'cyc1' });
    expect(started).not.toContain('mid');
    expect(started).not.toContain('cyc2');
    expect(outcomes).toHaveLength(6);
  });

  it('runs each key once, and ends on no keys', async () => {
    const { started } = await runGraph({ a: [], b: ['a'] }, 2, { keys: ['a', 'b', 'a'] });
    expect(started).toEqual(['a', 'b']);
    expect(
      await inDependencyOrder(
        [],
        () => [],
        1,
        async () => undefined,
      ),
    ).toEqual([]);
  });
});
