import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { buildChain } from '../reliability/consistency.js';

/*
 * An attic push (the NAR streamed to a server that signs) interrupted after one of two paths:
 * the line it prints counts the path it pushed, as the spooled path's does.
 */

const TOKEN = 'attic-interrupt-token-0123456789';
let attic: AtticDouble;
let world: CachixEnv;
let chain: string[];

beforeAll(async () => {
  [attic, world, chain] = await Promise.all([
    startAtticDouble({ caches: [{ name: 'main', isPublic: true }], tokens: { [TOKEN]: { pull: true, push: true } } }),
    makeCachixEnv(),
    buildChain('attic-interrupt', 2, 0),
  ]);
});
afterAll(async () => {
  await attic?.stop();
  await world?.cleanup();
});

describe('an attic push interrupted by Ctrl-C', () => {
  it('after one of two paths: "interrupted: 1 of 2 paths pushed", exit 130', async () => {
    // The first upload is answered; the second never is, so the push waits there for our signal.
    attic.faults.stallAfterUploads = 1;
    const child = spawn(process.execPath, [CACHIX_BIN, 'push', '-j', '1', attic.cacheUrl('main'), chain.at(-1)!], {
      env: { ...process.env, CI: 'true', ...world.env, CACHIX_AUTH_TOKEN: TOKEN },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const firstPushed = new Promise<void>((resolve) =>
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        if (stderr.includes('[1/2] pushed')) resolve();
      }),
    );
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await Promise.race([firstPushed, closed]);
    // The second upload has started (the double has it) before the signal goes.
    while (attic.uploads.length < 2 && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGINT');
    expect(await closed, stderr).toBe(130);
    expect(stderr).toContain('interrupted: 1 of 2 paths pushed; run again to finish');
  });
});
