// The closure query of a push, started by the process entry before the command line is parsed:
// a push that finds everything in the cache is mostly this query, and Nix needs no help from the
// parser to start it. The push command takes it over when it asks for the same paths.
import { queryClosure, type ClosureListing } from './closure.js';
import { startDumpEarly, stopEarlyDump } from './early-dump.js';

interface EarlyQuery {
  paths: string[];
  listing: Promise<ClosureListing>;
  stop: AbortController;
}

let early: EarlyQuery | undefined;

/** Starts `queryClosure(paths)` now, for a push command that will ask for exactly these paths. */
export function startClosureEarly(paths: string[]): void {
  const stop = new AbortController();
  const listing = queryClosure(paths, stop.signal);
  // Nobody may ever take it (the command fails first): its failure is then nobody's to report.
  listing.catch(() => undefined);
  early = { paths, listing, stop };
  // The first path's own NAR, when Nix's walk is the one to read it: see early-dump.ts.
  if (paths[0] !== undefined) startDumpEarly(paths[0]);
}

/**
 * A closure already listed for exactly `paths` (a push from stdin lists it to learn that they are
 * all valid): the push command takes it as it takes one started early, instead of asking again.
 */
export function offerClosure(paths: string[], listing: ClosureListing): void {
  early?.stop.abort();
  early = { paths, listing: Promise.resolve(listing), stop: new AbortController() };
}

/** The query started early for exactly `paths`, once; stopping `signal` stops it. */
export function takeEarlyClosure(paths: string[], signal: AbortSignal): Promise<ClosureListing> | undefined {
  const taken = early;
  if (!taken || taken.paths.length !== paths.length || taken.paths.some((path, index) => path !== paths[index])) return undefined;
  early = undefined;
  if (signal.aborted) taken.stop.abort();
  else signal.addEventListener('abort', () => taken.stop.abort(), { once: true });
  return taken.listing;
}

/** Ends what was started early and not taken (a command that failed first, or took another path). */
export function dropEarlyWork(): void {
  early?.stop.abort();
  early = undefined;
  stopEarlyDump();
}
