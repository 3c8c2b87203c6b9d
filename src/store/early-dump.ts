// The NAR of the store path a plain push names, from `nix-store --dump` started by the process
// entry: for a tree of many small entries (the kind Nix's walk reads more cheaply than ours), the
// dump is most of the push, and nothing about it waits for the command line, the cache or Nix's
// queries. So it starts first and is read ahead into memory while Node loads our code and Nix
// answers; the push takes it when it comes to upload that path, and stops it when the path is in
// the cache already or turns out to be read another way. Whatever it reads is checked against
// Nix's NarHash like any other dump.
import { countEntriesUpTo, NIX_MIN_ENTRIES, nixDumpIsCheaper, startNixStoreDump, type RunningDump } from './nix-store-dump.js';

/**
 * Read ahead while nobody asks: enough for Node's start and Nix's queries at Nix's pace (tens of
 * MB a second over tiny files), and a bound on what a push holds for a path it may not need.
 */
export const EARLY_READ_AHEAD_BYTES = 32 << 20;

interface EarlyDump {
  path: string;
  /** The tree's entries, counted up to one past NIX_MIN_ENTRIES. */
  entries: Promise<number>;
  /** Started once the count passes NIX_MIN_ENTRIES. */
  dump?: RunningDump | undefined;
  stopped: boolean;
}

let early: EarlyDump | undefined;

/**
 * Counts the entries of store path `path` off this thread and, once there are more than a
 * tree of a few big files has, starts its dump. Never keeps the process alive by itself.
 */
export function startDumpEarly(path: string): void {
  stopEarlyDump();
  const started: EarlyDump = { path, entries: Promise.resolve(0), stopped: false };
  started.entries = countEntriesUpTo(path, NIX_MIN_ENTRIES, NIX_MIN_ENTRIES, () => {
    if (started.stopped) return;
    started.dump = startNixStoreDump(path, { readAheadBytes: EARLY_READ_AHEAD_BYTES, keepAlive: false });
    process.once('exit', () => started.dump?.stop());
  });
  early = started;
}

/**
 * The early dump of `path`, if one runs and Nix's walk is the cheaper for a NAR of `narSize`
 * bytes (the rule every other dump follows); taken once. Any other early dump is stopped.
 */
export async function takeEarlyDump(path: string, narSize: number): Promise<AsyncGenerator<Buffer> | undefined> {
  const candidate = early;
  if (!candidate || candidate.path !== path) return undefined;
  early = undefined;
  await candidate.entries;
  // The rule every dump follows, now that the NAR's size is known (the count stops once it knows).
  if (candidate.stopped || !candidate.dump || !nixDumpIsCheaper(path, narSize)) {
    stop(candidate);
    return undefined;
  }
  return candidate.dump.chunks;
}

/** Stops the early dump unless `wanted` says its path is still to be uploaded. */
export function stopEarlyDump(wanted: (path: string) => boolean = () => false): void {
  if (!early || wanted(early.path)) return;
  stop(early);
  early = undefined;
}

/** Bytes the early dump of `path` has read and holds, for tests; undefined when none runs. */
export function earlyDumpHeldBytes(path: string): number | undefined {
  return early?.path === path ? early.dump?.heldBytes() : undefined;
}

function stop(dump: EarlyDump): void {
  dump.stopped = true;
  dump.dump?.stop();
}
