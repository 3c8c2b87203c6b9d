import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = resolve(import.meta.dirname, '../../dist');

/** Which of undici's files a fresh Node has loaded after importing these built modules. */
function undiciFilesLoadedBy(modules: string[]): string[] {
  const script = `
    const { createRequire } = await import('node:module');
    for (const module of ${JSON.stringify(modules)}) await import(module);
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((file) => file.includes('/node_modules/undici/'));
    console.log(JSON.stringify(loaded.map((file) => file.slice(file.indexOf('/node_modules/undici/') + 21))));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as string[];
}

describe("a command that talks HTTP loads undici's Agent and request only", () => {
  it("HTTP, attic and cachix API caches: undici's index (fetch, WebSocket, mocks) is never loaded, its Agent is", () => {
    const loaded = undiciFilesLoadedBy(
      ['caches/http.js', 'caches/attic-client.js', 'caches/cachix-api-calls.js', 'caches/upload-watchdog.js'].map(
        (file) => `${DIST}/${file}`,
      ),
    );
    expect(loaded).toContain('lib/dispatcher/agent.js');
    expect(loaded).toContain('lib/api/api-request.js');
    expect(loaded).not.toContain('index.js');
    expect(loaded.filter((file) => file.startsWith('lib/web/') || file.startsWith('lib/mock/'))).toEqual([]);
  });
});
