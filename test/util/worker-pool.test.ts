import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerPool, type HeldWork } from '../../src/util/worker-pool.js';

// The pool every worker pool of ours is built on (small NARs, NAR readers, verify's digests): an
// idle pool never keeps the process alive, a busy worker does, a worker lost with work in hand
// fails that work, and work goes to the least loaded worker, started only up to the size.

const WORKER = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (m) => {
  if (m.type === 'exit') process.exit(m.code);
  if (m.type === 'throw') throw new Error('thrown in the worker');
  if (m.type === 'echo') setTimeout(() => parentPort.postMessage(m), m.delay);
});
`;

/** Holds a worker's work until a reply comes, with an idle worker beside it; prints the reply. */
const CHILD = (poolModule: string, worker: string): string => `import { WorkerPool } from ${JSON.stringify(poolModule)};
const work = { fail: (error) => console.log('failed', error.message) };
const pool = new WorkerPool({
  script: new URL(${JSON.stringify(worker)}),
  size: 2,
  onMessage: (entry, message) => { console.log('reply', message.n); pool.release(entry, work); },
  exited: (code) => new Error('exited ' + code),
});
const busy = pool.pick();
pool.hold(busy, work);
pool.start();
busy.worker.postMessage({ type: 'echo', n: 1, delay: 200 });
`;

let dir: string;
let worker: URL;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cachix-worker-pool-'));
  await writeFile(join(dir, 'worker.mjs'), WORKER);
  worker = pathToFileURL(join(dir, 'worker.mjs'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function pool(size: number, lost?: () => void): WorkerPool<HeldWork, unknown> {
  return new WorkerPool<HeldWork, unknown>({
    script: worker,
    size,
    onMessage: () => undefined,
    exited: (code) => new Error(`exited ${code}`),
    onLost: lost,
  });
}

describe('WorkerPool', () => {
  it('keeps the process alive while a worker holds work, and lets it exit once every worker is idle', async () => {
    // The built module: the same code the CLI runs, in a process of its own whose exit is the verdict.
    const poolModule = pathToFileURL(resolve('dist/util/worker-pool.js')).href;
    await writeFile(join(dir, 'child.mjs'), CHILD(poolModule, worker.href));
    const child = spawn(process.execPath, [join(dir, 'child.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timeout);
    expect(stdout, 'the busy worker kept the process alive until its reply').toBe('reply 1\n');
    expect(code, 'the process exited on its own once both workers were idle (killed after 10 s otherwise)').toBe(0);
  });

  it.each([
    ['exits', { type: 'exit', code: 3 }, 'exited 3'],
    ['throws', { type: 'throw' }, 'thrown in the worker'],
  ])('fails what a worker held when it %s, and starts another in its place', async (_how, message, expected) => {
    let lost = 0;
    const workers = pool(1, () => lost++);
    try {
      const entry = workers.pick();
      const failures: string[] = [];
      const recorded = (): HeldWork => ({ fail: (error) => void failures.push(error.message) });
      workers.hold(entry, recorded());
      workers.hold(entry, recorded());
      // Not events.once: it rejects at the 'error' that comes before 'exit'.
      const exited = new Promise((done) => entry.worker.once('exit', done));
      entry.worker.postMessage(message);
      await exited;
      // The pool's own 'exit' listener came first: by now what the worker held has failed.
      expect(failures).toEqual([expected, expected]);
      expect(entry.held.size).toBe(0);
      expect(lost).toBe(1);
      expect(workers.workers).not.toContain(entry);
      expect(workers.pick()).not.toBe(entry);
    } finally {
      await workers.close();
    }
  });

  it('picks the least loaded worker, and starts a new one only while some worker is busy and the pool is not full', async () => {
    const workers = pool(2);
    try {
      const work = (): HeldWork => ({ fail: () => undefined });
      const first = workers.pick();
      expect(workers.pick(), 'an idle worker is reused').toBe(first);
      workers.hold(first, work());
      const second = workers.pick();
      expect(second, 'a new worker while the only one is busy').not.toBe(first);
      workers.hold(second, work());
      workers.hold(second, work());
      expect(workers.pick(), 'the pool is full: the worker holding less').toBe(first);
      expect(workers.workers).toHaveLength(2);
      expect(
        workers.leastLoaded((entry) => (entry === first ? 5 : 1)),
        'by the load it is told',
      ).toBe(second);
    } finally {
      await workers.close();
    }
  });
});
