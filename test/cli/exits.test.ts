import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk } from '../helpers/cachix-env.js';
import { startAtticDouble, type AtticDouble } from '../helpers/attic-double.js';
import { startCachixApiDouble, type CachixApiDouble } from '../helpers/cachix-api-double.js';
import type { CliResult } from '../helpers/cli.js';
import { buildWithNix, requireNix } from '../helpers/nix.js';
import { startServerWorld, type ServerWorld } from '../helpers/server-world.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../../src/nix/signing.js';

/**
 * Every command ends its process by itself once its work is done: nothing it leaves behind (a
 * timer, a socket, a worker, a child) keeps Node running. Most tests run command lines in their
 * own process, where a leftover handle goes unseen; here each runs as the built binary, on every
 * kind of server, and must exit well within the time its work takes.
 */
const EXIT_WITHIN_MS = 30_000;

let servers: ServerWorld;
let cachixApi: CachixApiDouble;
let attic: AtticDouble;
let top: string;
let apiSigningKey: string;
const TOKEN = 'exits-token-0123456789';

/** The built binary, killed (code null) if it has not exited within EXIT_WITHIN_MS. */
async function exits(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const result = await servers.world.spawn(args, { env, timeoutMs: EXIT_WITHIN_MS });
  expect(result.code, `cachix ${args.join(' ')} did not exit by itself within ${EXIT_WITHIN_MS} ms\n${result.stderr}`).not.toBeNull();
  return result;
}

beforeAll(async () => {
  requireNix();
  servers = await startServerWorld('exits', { listing: 'propfind' });
  const dep = await buildWithNix('exits-dep', 'echo dep > $out');
  top = await buildWithNix('exits-top', 'echo "$dep0" > $out', { deps: [dep] });
  const key = generateSigningKey('exits-api-1');
  cachixApi = await startCachixApiDouble({
    token: TOKEN,
    caches: [{ name: 'api', publicSigningKeys: [formatPublicKey(publicKeyOf(key))], isPublic: true }],
  });
  apiSigningKey = formatSigningKey(key);
  attic = await startAtticDouble({ caches: [{ name: 'main', isPublic: true }], tokens: { [TOKEN]: { pull: true, push: true } } });
});
afterAll(async () => {
  await Promise.all([servers?.stop(), cachixApi?.stop(), attic?.stop()]);
});

describe('every command exits by itself once done, as the built binary', () => {
  const kinds: Array<[string, () => string]> = [
    ['file', () => `file://${servers.scratch}/file-cache`],
    ['nginx (WebDAV PUT)', () => servers.nginx.url],
    ['s3rver', () => servers.s3.s3Url],
  ];
  it.each(kinds)('%s: create, push, a no-op push, verify, info, gc --dry-run', async (label, url) => {
    const name = label.split(' ')[0]!;
    expectOk(await servers.world.create(name, url()), `create ${name}`);
    for (const args of [
      ['push', name, top],
      ['push', name, top],
      ['verify', name, '-r', top],
      ['info', name],
      ['gc', name, '--older-than', '1d', '--dry-run'],
    ]) {
      expectOk(await exits(args), `cachix ${args.join(' ')}`);
    }
  });

  it('the cachix API: push and a no-op push, signed with the cache key', async () => {
    const env = { CACHIX_AUTH_TOKEN: TOKEN, CACHIX_SIGNING_KEY: apiSigningKey };
    for (let round = 0; round < 2; round++)
      expectOk(await exits(['--host', cachixApi.url, 'push', 'api', top], env), 'push to the cachix API');
  });

  it('attic: push and a no-op push', async () => {
    for (let round = 0; round < 2; round++)
      expectOk(await exits(['push', attic.cacheUrl('main'), top], { CACHIX_AUTH_TOKEN: TOKEN }), 'push to attic');
  });

  it('a push the server refuses (attic, a token that may not push) and one to a port nobody listens on: exit 1', async () => {
    const refused = await exits(['push', attic.cacheUrl('main'), top], { CACHIX_AUTH_TOKEN: 'not-a-token-of-attic' });
    expect(refused.code).toBe(1);
    const nobody = await exits(['push', 'http://127.0.0.1:9/', top], { CACHIX_SIGNING_KEY: apiSigningKey });
    expect(nobody.code).toBe(1);
  });
});
