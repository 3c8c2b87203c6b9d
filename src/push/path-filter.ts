// The filter step between a closure and the cache lookup: what CI needs pushed, not what an
// upstream cache already serves (attic's default) nor what the user excluded.
import type { PathInfo } from '../store/path-info.js';
import { upstreamKeyOf } from '../store/upstream.js';
import { excludedBy } from './exclude.js';
import { formatBytes } from '../util/quantities.js';

export interface PathSelection {
  /** Signatures by these key names mark a path as served upstream; empty pushes everything. */
  upstreamKeys: string[];
  /** Matched against each path's name. */
  excludes: RegExp[];
}

export interface PathsAndBytes {
  paths: number;
  narBytes: number;
}

export interface FilteredPaths {
  kept: PathInfo[];
  /** Not pushed: signed by an upstream key. */
  upstream: PathInfo[];
  /** Not pushed: matched an --exclude (and not served upstream). */
  excluded: PathInfo[];
  /** The upstream key names that matched, for the summary. */
  upstreamKeysSeen: Set<string>;
}

export function filterPaths(closure: readonly PathInfo[], selection: PathSelection | undefined): FilteredPaths {
  const result: FilteredPaths = { kept: [], upstream: [], excluded: [], upstreamKeysSeen: new Set() };
  for (const info of closure) {
    const upstreamKey = selection ? upstreamKeyOf(info, selection.upstreamKeys) : undefined;
    if (upstreamKey !== undefined) {
      result.upstream.push(info);
      result.upstreamKeysSeen.add(upstreamKey);
    } else if (selection && excludedBy(info.path, selection.excludes)) result.excluded.push(info);
    else result.kept.push(info);
  }
  return result;
}

export interface FilteredTotals {
  upstream: PathsAndBytes;
  excluded: PathsAndBytes;
  upstreamKeys: string[];
}

function totalOf(infos: readonly PathInfo[]): PathsAndBytes {
  return { paths: infos.length, narBytes: infos.reduce((total, info) => total + info.narSize, 0) };
}

export function filteredTotals(filtered: FilteredPaths): FilteredTotals {
  return { upstream: totalOf(filtered.upstream), excluded: totalOf(filtered.excluded), upstreamKeys: [...filtered.upstreamKeysSeen] };
}

/** Adds one push's filtered totals to a running total (watch-store, the daemon). */
export function addFilteredTotals(into: Partial<FilteredTotals>, from: Partial<FilteredTotals>): void {
  for (const field of ['upstream', 'excluded'] as const) {
    const add = from[field];
    if (!add) continue;
    const sum = (into[field] ??= { paths: 0, narBytes: 0 });
    sum.paths += add.paths;
    sum.narBytes += add.narBytes;
  }
  if (from.upstreamKeys) into.upstreamKeys = [...new Set([...(into.upstreamKeys ?? []), ...from.upstreamKeys])];
}

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

/** What the summary adds about paths left out on purpose, and how to push them anyway. */
export function filteredSummary({ upstream, excluded, upstreamKeys }: Partial<FilteredTotals>): string {
  const parts: string[] = [];
  if (upstream && upstream.paths > 0) {
    const keys = upstreamKeys && upstreamKeys.length > 0 ? upstreamKeys.join(', ') : 'an upstream key';
    parts.push(
      `not pushed: ${plural(upstream.paths, 'path')} (${formatBytes(upstream.narBytes)} of NAR) signed by ${keys}, served upstream (push them anyway with --include-upstream)`,
    );
  }
  if (excluded && excluded.paths > 0) {
    parts.push(`not pushed: ${plural(excluded.paths, 'path')} (${formatBytes(excluded.narBytes)} of NAR) matched --exclude`);
  }
  return parts.map((part) => `; ${part}`).join('');
}
