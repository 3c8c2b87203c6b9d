// `cachix pin` for caches on the cachix API (Command/Pin.hs): the store path must be valid
// locally and every artifact a file inside it, both checked before the service is asked.
import { stat } from 'node:fs/promises';
import type { PinCreate } from '../caches/cachix-api-types.js';
import { CachixApiClient } from '../caches/cachix-api-client.js';
import { authToken, cachixHost, openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { EXIT_USAGE, UserError } from '../errors.js';
import { queryValidPaths } from '../store/path-info.js';
import { resolveStorePaths } from '../store/resolve-paths.js';

export interface PinRequest {
  cacheName: string;
  pinName: string;
  storePath: string;
  artifacts: string[];
  keepDays?: number | undefined;
  keepRevisions?: number | undefined;
  keepForever?: boolean | undefined;
}

/** cachix's three --keep-* flags are mutually exclusive; none leaves the cache's own default. */
export function keepOf(request: PinRequest): PinCreate['keep'] {
  const given = [request.keepDays !== undefined, request.keepRevisions !== undefined, request.keepForever === true].filter(Boolean);
  if (given.length > 1) throw new UserError('give at most one of --keep-days, --keep-revisions and --keep-forever', undefined, EXIT_USAGE);
  if (request.keepDays !== undefined) return { tag: 'Days', contents: request.keepDays };
  if (request.keepRevisions !== undefined) return { tag: 'Revisions', contents: request.keepRevisions };
  if (request.keepForever) return { tag: 'Forever' };
  return null;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function pinOnCachix(context: Context, request: PinRequest): Promise<PinCreate> {
  const keep = keepOf(request);
  const opened = await openCache(request.cacheName, context);
  await opened.cache.close?.();
  if (opened.cache.capabilities.pins !== 'service') {
    throw new UserError(
      `${request.cacheName} is not a cache on the cachix API, and pins are kept by the cachix service`,
      'pin a cache on the cachix API (cachix:NAME or a name not in your config)',
    );
  }
  const token = authToken(context, opened.config);
  if (!token)
    throw new UserError(`pinning in ${request.cacheName} needs an auth token`, 'run `cachix authtoken --stdin` or set CACHIX_AUTH_TOKEN');
  const [storePath] = await resolveStorePaths([request.storePath]);
  if ((await queryValidPaths([storePath!])).length === 0) {
    throw new UserError(`${storePath} is not a valid path in the Nix store`, 'build or fetch it first, push it, then pin it');
  }
  for (const artifact of request.artifacts) {
    const inside = `${storePath}/${artifact.replace(/^\/+/, '')}`;
    if (!(await isFile(inside)))
      throw new UserError(`artifact ${inside} does not exist`, 'an artifact is a file inside the pinned store path');
  }
  const pin: PinCreate = { name: request.pinName, storePath: storePath!, artifacts: request.artifacts, keep };
  const client = new CachixApiClient({ name: request.cacheName, host: cachixHost(context, opened.config), token });
  try {
    await client.createPin(pin);
  } finally {
    await client.close();
  }
  return pin;
}
