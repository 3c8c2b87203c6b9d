// Reading and writing the pin files of a cache (format: pin-file.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import type { BinaryCache } from '../caches/cache.js';
import { UserError, messageOf } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import { readLimited } from '../util/read-limited.js';
import { holdIfAsked } from '../util/test-hold.js';
import { requireListing, requireMaintenance, type ListableCache } from './capabilities.js';
import {
  addRevision,
  checkPinName,
  formatPin,
  liveRevisions,
  mergeRevision,
  parsePin,
  pinFileName,
  PINS_FOLDER,
  type KeepPolicy,
  type Pin,
} from './pin-file.js';

const MAX_PIN_FILE_BYTES = 4 * 1024 * 1024;

async function readText(cache: BinaryCache, name: string): Promise<string | undefined> {
  const stream = await cache.getFile(name);
  if (!stream) return undefined;
  return readLimited(stream, MAX_PIN_FILE_BYTES, () => new Error(`${name} is larger than ${MAX_PIN_FILE_BYTES} bytes`));
}

function unreadablePin(cache: BinaryCache, file: string, problem: string, cacheArgument: string): UserError {
  const name = file.slice(PINS_FOLDER.length, -'.json'.length);
  const deleting = checkPinName(name) === undefined ? `cachix pin ${cacheArgument} ${name} --delete` : `delete ${file} in the cache`;
  return new UserError(
    `the pin file ${file} in ${cache.description} cannot be read: ${problem}`,
    `fix or delete it (${deleting}): until then gc cannot know what it protects and deletes nothing`,
  );
}

/** `cacheArgument`: the cache as the user named it, shell-quoted, for the hint of a pin that cannot be read. */
export async function readPin(cache: BinaryCache, name: string, cacheArgument: string): Promise<Pin | undefined> {
  const file = pinFileName(name);
  const text = await readText(cache, file);
  if (text === undefined) return undefined;
  try {
    return parsePin(text);
  } catch (error) {
    throw unreadablePin(cache, file, messageOf(error), cacheArgument);
  }
}

/** Every pin of the cache. One that cannot be read is an error: a pin must never be ignored silently. */
export async function readPins(cache: ListableCache, cacheArgument: string): Promise<Pin[]> {
  const files = (await cache.list(PINS_FOLDER)).filter((file) => file.name.endsWith('.json'));
  const pins: Pin[] = [];
  for (const file of files) {
    const text = await readText(cache, file.name);
    if (text === undefined) continue; // deleted since the listing
    try {
      pins.push(parsePin(text));
    } catch (error) {
      throw unreadablePin(cache, file.name, messageOf(error), cacheArgument);
    }
  }
  return pins.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * How long a pin waits before reading its write back. Another `pin` of the same name that read
 * the file before our write lands its own write within one request of it; reading back after
 * this finds a revision such a write dropped, and puts it back.
 */
const PIN_SETTLE_MS = 1000;
const PIN_WRITE_ATTEMPTS = 5;

/**
 * Records `storePath` as the newest revision of the pin `name` (the path must be in the cache).
 * Two `pin` commands on one name at once each keep their revision: each reads the file back
 * after PIN_SETTLE_MS and writes its revision again, in its place by date, if the other's write
 * dropped it. Says so when the race goes on past PIN_WRITE_ATTEMPTS rounds.
 */
export async function addPinRevision(
  cache: BinaryCache,
  name: string,
  storePath: string,
  keep: KeepPolicy | undefined,
  cacheArgument: string,
): Promise<Pin> {
  const writable = requireMaintenance(cache);
  // A pin on a path the cache lacks protects nothing and would mislead: refuse it.
  if ((await writable.getNarInfo(hashPartOf(storePath))) === undefined)
    throw new UserError(`${storePath} is not in ${cache.description}`, `push it first: cachix push ${cacheArgument} ${storePath}`);
  const pinnedAt = new Date();
  const file = pinFileName(name);
  let pin = addRevision(await readPin(writable, name, cacheArgument), name, storePath, keep, pinnedAt);
  const ours = pin.revisions.find((revision) => revision.storePath === storePath)!;
  for (let attempt = 1; ; attempt++) {
    await holdIfAsked('pin-writing');
    await writable.putFile(file, formatPin(pin), 'application/json');
    await sleep(PIN_SETTLE_MS);
    const current = await readPin(writable, name, cacheArgument);
    // Deleted meanwhile (pin --delete): the deletion is the later wish.
    if (!current) return pin;
    const merged = mergeRevision(current, storePath, ours.pinnedAt, keep, new Date());
    if (!merged) return current;
    if (attempt === PIN_WRITE_ATTEMPTS)
      throw new UserError(
        `another client kept rewriting the pin '${name}' in ${cache.description}: ${storePath} is not recorded in it`,
        `run the pin again once the other pin commands have finished: cachix pin ${cacheArgument} ${name} ${storePath}`,
      );
    pin = merged;
  }
}

/** Removes the pin; its paths stay until a gc finds nothing else keeping them. */
export async function deletePin(cache: BinaryCache, name: string, cacheArgument: string): Promise<void> {
  const writable = requireMaintenance(cache);
  const file = pinFileName(name);
  const existing = await writable.getFile(file);
  if (!existing)
    throw new UserError(`there is no pin '${name}' in ${cache.description}`, `list the pins with: cachix pin ${cacheArgument} --list`);
  // Read to the end: an HTTP body destroyed half-read is an error event, not a quiet close.
  for await (const chunk of existing) void chunk;
  await writable.deleteFile(file);
}

export interface PinLine {
  pin: Pin;
  liveRevisions: number;
}

/** Every pin that has a revision, with how many of its revisions `keep` still protects. */
export async function listPins(cache: BinaryCache, cacheArgument: string): Promise<PinLine[]> {
  const now = new Date();
  const pins = await readPins(requireListing(cache), cacheArgument);
  return pins.filter((pin) => pin.revisions.length > 0).map((pin) => ({ pin, liveRevisions: liveRevisions(pin, now).length }));
}
