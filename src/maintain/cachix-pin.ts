// `cachix pin` for caches on the cachix API (Command/Pin.hs): the store path must be valid
// locally and every artifact a file inside it, both checked before the service is asked.
import { stat } from 'node:fs/promises';
import type { BinaryCache } from '../caches/cache.js';
import type { PinCreate } from '../caches/cachix-api-types.js';
import { UserError } from '../errors.js';
import { queryValidPaths } from '../store/path-info.js';
import type { KeepPolicy } from './pin-file.js';

export interface CachixPinRequest {
  pinName: string;
  /** Resolved to a store path already. */
  storePath: string;
  artifacts: string[];
  /** Undefined: the cache's own default, as cachix sends `null`. */
  keep: KeepPolicy | undefined;
}

/** The service's encoding of a keep policy (Cachix.Types.PinCreate). */
export function keepForCachix(keep: KeepPolicy | undefined): PinCreate['keep'] {
  if (!keep) return null;
  if ('days' in keep) return { tag: 'Days', contents: keep.days };
  if ('revisions' in keep) return { tag: 'Revisions', contents: keep.revisions };
  return { tag: 'Forever' };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Asks the service to pin, through `createPin` of the cache already open; returns what was sent. */
export async function pinOnCachix(createPin: NonNullable<BinaryCache['createPin']>, request: CachixPinRequest): Promise<PinCreate> {
  const { storePath } = request;
  if ((await queryValidPaths([storePath])).length === 0) {
    throw new UserError(`${storePath} is not a valid path in the Nix store`, 'build or fetch it first, push it, then pin it');
  }
  for (const artifact of request.artifacts) {
    const inside = `${storePath}/${artifact.replace(/^\/+/, '')}`;
    if (!(await isFile(inside)))
      throw new UserError(`artifact ${inside} does not exist`, 'an artifact is a file inside the pinned store path');
  }
  const pin: PinCreate = { name: request.pinName, storePath, artifacts: request.artifacts, keep: keepForCachix(request.keep) };
  await createPin(pin);
  return pin;
}
