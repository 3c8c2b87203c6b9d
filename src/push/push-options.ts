import type { ExtrasTally, NarExtras } from './cache-extras.js';
// What a push is asked to do (PushOptions), and what it reports as it goes and at the end.
import type { SigningKey } from '../nix/signing.js';
import type { CompressionMethod } from '../util/compression.js';
import type { FilteredTotals, PathSelection } from './path-filter.js';

export interface PushOptions {
  compression: CompressionMethod;
  compressionLevel?: number | undefined;
  jobs: number;
  omitDeriver: boolean;
  /** Absent for a cache that signs on its server (BinaryCache.uploadNarSource). */
  signingKey?: SigningKey | undefined;
  /** Upstream keys and excludes; without it, every path of the closure is a candidate. */
  selection?: PathSelection | undefined;
  /** Build logs, NAR listings, the debug-info index (--logs, --listings, --debug-info). */
  extras?: NarExtras | undefined;
  /**
   * Hash parts known to be in the cache (the daemon's --narinfo-cache-ttl): not asked again. A
   * path found there or uploaded is added.
   */
  knownPresent?: KnownPresent | undefined;
}

export interface KnownPresent {
  has(hashPart: string): boolean;
  add(hashPart: string): void;
}

/** How far a push got, kept current while it runs (for the line printed when it is interrupted). */
export interface PushTally {
  planned: number;
  pushed: number;
}

export interface PushCounts {
  pushed: number;
  skipped: number;
  failed: number;
  narBytes: number;
  fileBytes: number;
}

/** Totals of a push; what was left out on purpose (served upstream, excluded) when a filter ran. */
export interface PushSummary extends PushCounts, Partial<FilteredTotals> {
  /** Present when build logs were asked for. */
  extras?: ExtrasTally | undefined;
}
