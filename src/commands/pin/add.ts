import type { Context } from '../../context.js';
import type { BinaryCache } from '../../caches/cache.js';
import { UserError } from '../../errors.js';
import { requireMaintenance } from '../../maintain/capabilities.js';
import { addRevision, formatPin, pinFileName, type KeepPolicy } from '../../maintain/pin-file.js';
import { readPin } from '../../maintain/pins.js';
import { hashPartOf } from '../../nix/store-path.js';
import { resolveStorePaths } from '../../store/resolve-paths.js';

export async function addPin(
  context: Context,
  cache: BinaryCache,
  name: string,
  pathArgument: string,
  keep: KeepPolicy | undefined,
): Promise<number> {
  const writable = requireMaintenance(cache);
  const [storePath] = await resolveStorePaths([pathArgument]);
  // A pin on a path the cache lacks protects nothing and would mislead: refuse it.
  if ((await writable.getNarInfo(hashPartOf(storePath!))) === undefined) {
    throw new UserError(`${storePath} is not in ${cache.description}`, `push it first: cachix push CACHE ${storePath}`);
  }
  const pin = addRevision(await readPin(writable, name), name, storePath!, keep, new Date());
  await writable.putFile(pinFileName(name), formatPin(pin), 'application/json');
  context.stdout.write(`${name} ${storePath}\n`);
  return 0;
}
