import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/nginx.js';
import { makeCachixEnv, type CachixEnv } from '../helpers/cachix-env.js';

/** A server that was never reached is a wrong URL or a stopped server: say so at once, no 90 s of retries. */
describe('a cache server that cannot be reached at all', () => {
  let world: CachixEnv;
  let closedPort: number;
  beforeAll(async () => {
    world = await makeCachixEnv();
    closedPort = await freePort();
  });
  afterAll(async () => world.cleanup());

  it('http: a refused connection fails at once with one line', async () => {
    const started = Date.now();
    const result = await world.run(['create', 'down', '--url', `http://127.0.0.1:${closedPort}/`]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(`cachix: cannot reach http://127.0.0.1:${closedPort} (ECONNREFUSED)`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('http: a host name that does not resolve', async () => {
    const result = await world.run(['create', 'nowhere', '--url', 'http://cache.invalid/']);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(/^cachix: cannot reach http:\/\/cache\.invalid \((ENOTFOUND|EAI_AGAIN)\)$/);
  });

  it('s3: an endpoint that refuses connections', async () => {
    const started = Date.now();
    const url = `s3://bucket?endpoint=127.0.0.1:${closedPort}&scheme=http&region=us-east-1`;
    const result = await world.run(['create', 's3down', '--url', url], { env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' } });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(`cachix: cannot reach s3://bucket at http://127.0.0.1:${closedPort} (ECONNREFUSED)`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a name not in the config, with the cachix API host down', async () => {
    const result = await world.run(['--host', `http://127.0.0.1:${closedPort}`, 'use', 'not-configured']);
    expect(result.code).toBe(1);
    // First the note that the name is being looked up on the cachix API, then the one error line.
    const [note, error] = result.stderr.split('\n');
    expect(note).toMatch(/^note: not-configured is not in .*; looking it up on http:\/\/127\.0\.0\.1:\d+/);
    expect(error).toBe(`cachix: cannot reach the cachix API at http://127.0.0.1:${closedPort} (ECONNREFUSED)`);
    expect(result.stderr).toContain('cachix create');
  });
});
