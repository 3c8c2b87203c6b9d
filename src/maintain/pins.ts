// Reading and writing the pin files of a cache (format: pin-file.ts).
import type { BinaryCache } from '../caches/cache.js';
import { UserError, messageOf } from '../errors.js';
import { readLimited } from '../util/read-limited.js';
import type { ListableCache } from './capabilities.js';
import { parsePin, pinFileName, PINS_FOLDER, type Pin } from './pin-file.js';

const MAX_PIN_FILE_BYTES = 4 * 1024 * 1024;

async function readText(cache: BinaryCache, name: string): Promise<string | undefined> {
  const stream = await cache.getFile(name);
  if (!stream) return undefined;
  return readLimited(stream, MAX_PIN_FILE_BYTES, () => new Error(`${name} is larger than ${MAX_PIN_FILE_BYTES} bytes`));
}

function unreadablePin(cache: BinaryCache, name: string, problem: string): UserError {
  return new UserError(
    `the pin file ${name} in ${cache.description} cannot be read: ${problem}`,
    `fix or delete it (cachix pin CACHE NAME --delete): until then gc cannot know what it protects and deletes nothing`,
  );
}

export async function readPin(cache: BinaryCache, name: string): Promise<Pin | undefined> {
  const file = pinFileName(name);
  const text = await readText(cache, file);
  if (text === undefined) return undefined;
  try {
    return parsePin(text);
  } catch (error) {
    throw unreadablePin(cache, file, messageOf(error));
  }
}

/** Every pin of the cache. One that cannot be read is an error: a pin must never be ignored silently. */
export async function readPins(cache: ListableCache): Promise<Pin[]> {
  const files = (await cache.list(PINS_FOLDER)).filter((file) => file.name.endsWith('.json'));
  const pins: Pin[] = [];
  for (const file of files) {
    const text = await readText(cache, file.name);
    if (text === undefined) continue; // deleted since the listing
    try {
      pins.push(parsePin(text));
    } catch (error) {
      throw unreadablePin(cache, file.name, messageOf(error));
    }
  }
  return pins.sort((a, b) => (a.name < b.name ? -1 : 1));
}
