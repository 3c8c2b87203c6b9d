// Holding a cachix process at a named point (src/util/test-hold.ts) to force an interleaving.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Holds {
  /** The environment that holds a process at `points`. */
  env(...points: string[]): NodeJS.ProcessEnv;
  /** Resolves once `count` processes are held at `point`; fails after `timeoutMs`. */
  waitHeld(point: string, count?: number, timeoutMs?: number): Promise<void>;
  /** Lets every process held at `point` (and any that reaches it later) go on. */
  release(point: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function makeHolds(): Promise<Holds> {
  const directory = await mkdtemp(join(tmpdir(), 'cachix-holds-'));
  return {
    env: (...points) => ({ CACHIX_TEST_HOLD: `${points.join(',')}:${directory}` }),
    async waitHeld(point, count = 1, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const held = (await readdir(directory)).filter((name) => name.startsWith(`${point}.`) && name.endsWith('.held'));
        if (held.length >= count) return;
        if (Date.now() > deadline)
          throw new Error(`${count} process(es) were not held at ${point} within ${timeoutMs} ms (held: ${held.length})`);
        await sleep(20);
      }
    },
    release: (point) => writeFile(join(directory, `${point}.go`), ''),
    cleanup: () => rm(directory, { recursive: true, force: true }),
  };
}
