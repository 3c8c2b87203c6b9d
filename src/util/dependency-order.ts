/** What became of one item of `inDependencyOrder`. */
export type Outcome<K> = { key: K; status: 'done' } | { key: K; status: 'failed'; error: unknown } | { key: K; status: 'blocked'; by: K };

/**
 * Runs `work` on each key, at most `limit` at once, each only after every key it `needs` (among
 * `keys`) is done. A failure does not stop the others: what needs a failed key, directly or not,
 * is never started and is reported as blocked by it. Keys outside `keys` count as done.
 */
export async function inDependencyOrder<K>(
  keys: readonly K[],
  needs: (key: K) => readonly K[],
  limit: number,
  work: (key: K) => Promise<void>,
): Promise<Array<Outcome<K>>> {
  const pending = new Set(keys);
  const waitingOn = new Map<K, number>();
  const dependents = new Map<K, K[]>();
  for (const key of keys) {
    const needed = [...new Set(needs(key))].filter((other) => other !== key && pending.has(other));
    waitingOn.set(key, needed.length);
    for (const other of needed) {
      const list = dependents.get(other);
      if (list) list.push(key);
      else dependents.set(other, [key]);
    }
  }
  const ready = keys.filter((key) => waitingOn.get(key) === 0);
  const outcomes: Array<Outcome<K>> = [];
  const block = (failed: K, root: K): void => {
    for (const dependent of dependents.get(failed) ?? []) {
      if (!pending.delete(dependent)) continue;
      outcomes.push({ key: dependent, status: 'blocked', by: root });
      block(dependent, root);
    }
  };
  let running = 0;
  await new Promise<void>((allDone) => {
    const startMore = (): void => {
      while (running < limit && ready.length > 0) {
        const key = ready.shift()!;
        running++;
        void work(key).then(
          () => {
            running--;
            pending.delete(key);
            outcomes.push({ key, status: 'done' });
            for (const dependent of dependents.get(key) ?? []) {
              const left = waitingOn.get(dependent)! - 1;
              waitingOn.set(dependent, left);
              if (left === 0 && pending.has(dependent)) ready.push(dependent);
            }
            startMore();
          },
          (error: unknown) => {
            running--;
            pending.delete(key);
            outcomes.push({ key, status: 'failed', error });
            block(key, key);
            startMore();
          },
        );
      }
      if (running === 0 && ready.length === 0) allDone();
    };
    startMore();
  });
  // A cycle among the keys (no real closure has one) leaves its members waiting: run them last.
  for (const key of pending) {
    try {
      await work(key);
      outcomes.push({ key, status: 'done' });
    } catch (error) {
      outcomes.push({ key, status: 'failed', error });
    }
  }
  return outcomes;
}
