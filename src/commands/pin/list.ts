import type { Context } from '../../context.js';
import type { BinaryCache } from '../../caches/cache.js';
import { requireListing } from '../../maintain/capabilities.js';
import { liveRevisions } from '../../maintain/pin-file.js';
import { readPins } from '../../maintain/pins.js';

/** One line per pin: name, newest store path, when it was pinned, what is kept. */
export async function listPins(context: Context, cache: BinaryCache): Promise<number> {
  const now = new Date();
  for (const pin of await readPins(requireListing(cache))) {
    const newest = pin.revisions[pin.revisions.length - 1];
    if (!newest) continue;
    const keep = 'forever' in pin.keep ? 'forever' : 'revisions' in pin.keep ? `${pin.keep.revisions} revisions` : `${pin.keep.days} days`;
    context.stdout.write(
      `${pin.name} ${newest.storePath} ${newest.pinnedAt.toISOString()} keep=${keep} live-revisions=${liveRevisions(pin, now).length}\n`,
    );
  }
  return 0;
}
