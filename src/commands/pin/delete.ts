import type { Context } from '../../context.js';
import type { BinaryCache } from '../../caches/cache.js';
import { UserError } from '../../errors.js';
import { requireMaintenance } from '../../maintain/capabilities.js';
import { pinFileName } from '../../maintain/pin-file.js';

/** Removes the pin; its paths stay until a gc finds nothing else keeping them. */
export async function deletePin(context: Context, cache: BinaryCache, name: string): Promise<number> {
  const writable = requireMaintenance(cache);
  const file = pinFileName(name);
  const existing = await writable.getFile(file);
  if (!existing) throw new UserError(`there is no pin '${name}' in ${cache.description}`, 'list the pins with: cachix pin CACHE --list');
  // Read to the end: an HTTP body destroyed half-read is an error event, not a quiet close.
  for await (const chunk of existing) void chunk;
  await writable.deleteFile(file);
  context.stdout.write(`${name}\n`);
  return 0;
}
