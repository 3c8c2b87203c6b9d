/** What became of one item of `inDependencyOrder`. */
export type Outcome<K> = { key: K; status: 'done' } | { key: K; status: 'failed'; error: unknown } | { key: K; status: 'blocked'; by: K };

/**
 * Runs `work` on each key, at most `limit` at once, each only after every key it `needs` (among
 * `keys`) is done. A failure does not stop the others: what needs a failed key, directly or not,
 * is never started and is reported as blocked by it. Keys outside `keys`, and a key's need of
 * itself, count as done. Keys that become ready together start in the order of `keys`, so the
 * same input runs in the same order.
 *
 * A cycle (no real closure has one, but a cache's narinfos can say anything) would leave its
 * members waiting for ever: when nothing runs and nothing is ready, one member of a cycle starts
 * anyway, and the rest, the keys needing the cycle included, follow their needs as before.
 */
export async function inDependencyOrder<K>(
  keys: readonly K[],
  needs: (key: K) => readonly K[],
  limit: number,
  work: (key: K) => Promise<void>,
): Promise<Array<Outcome<K>>> {
  if (limit < 1) throw new Error(`inDependencyOrder needs a limit of at least 1, not ${limit}`);
  const notStarted = new Set(keys);
  const waitingOn = new Map<K, number>();
  const neededBy = new Map<K, K[]>();
  const dependents = new Map<K, K[]>();
  for (const key of keys) {
    const needed = [...new Set(needs(key))].filter((other) => other !== key && notStarted.has(other));
    waitingOn.set(key, needed.length);
    neededBy.set(key, needed);
    for (const other of needed) {
      const list = dependents.get(other);
      if (list) list.push(key);
      else dependents.set(other, [key]);
    }
  }
  const ready = keys.filter((key) => waitingOn.get(key) === 0);
  let readyHead = 0;
  const outcomes: Array<Outcome<K>> = [];
  const block = (failed: K, root: K): void => {
    for (const dependent of dependents.get(failed) ?? []) {
      if (!notStarted.delete(dependent)) continue;
      outcomes.push({ key: dependent, status: 'blocked', by: root });
      block(dependent, root);
    }
  };
  /**
   * With nothing running or ready, every waiting key waits on another waiting key: following
   * those needs from the first one must come round to a key already seen, which is in a cycle.
   */
  const memberOfACycle = (): K => {
    const seen = new Set<K>();
    let key = notStarted.values().next().value as K;
    while (!seen.has(key)) {
      seen.add(key);
      key = neededBy.get(key)!.find((need) => notStarted.has(need))!;
    }
    return key;
  };
  let running = 0;
  await new Promise<void>((allDone) => {
    const start = (key: K): void => {
      notStarted.delete(key);
      running++;
      void work(key).then(
        () => {
          running--;
          outcomes.push({ key, status: 'done' });
          for (const dependent of dependents.get(key) ?? []) {
            const left = waitingOn.get(dependent)! - 1;
            waitingOn.set(dependent, left);
            if (left === 0 && notStarted.has(dependent)) ready.push(dependent);
          }
          startMore();
        },
        (error: unknown) => {
          running--;
          outcomes.push({ key, status: 'failed', error });
          block(key, key);
          startMore();
        },
      );
    };
    const startMore = (): void => {
      while (running < limit) {
        // A key can be in `ready` and already gone from notStarted: blocked, or started to break a cycle.
        while (readyHead < ready.length && !notStarted.has(ready[readyHead]!)) readyHead++;
        if (readyHead < ready.length) start(ready[readyHead++]!);
        else if (running === 0 && notStarted.size > 0) start(memberOfACycle());
        else break;
      }
      if (running === 0 && notStarted.size === 0) allDone();
    };
    startMore();
  });
  return outcomes;
}
