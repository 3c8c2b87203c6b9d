// The one thing `gc` and `push` share across processes and machines: gc writes this file in the
// cache root when it starts deleting and again when it ends. A push that finds a gc overlapping
// its own run checks its work once more (push/after-gc.ts): a gc can delete a NAR in the moment
// between listing it and the push writing the same NAR again, which no plain server lets either
// side prevent (S3, WebDAV and files have no conditional delete that all servers honour).

import type { BinaryCache } from './cache.js';
import { readLimited } from '../util/read-limited.js';

export const GC_MARKER_FILE = 'gc-running.json';
/** A marker is a line of JSON; anything this large is not one. */
const MAX_GC_MARKER_BYTES = 64 * 1024;

/** Clocks of the machines that push and collect differ; overlaps are judged with this margin. */
export const GC_CLOCK_MARGIN_MS = 5 * 60 * 1000;

export interface GcMarker {
  startedAt: Date;
  /** Absent while the gc runs (or when it was killed: then it counts as still running). */
  finishedAt?: Date | undefined;
}

export function formatGcMarker(marker: GcMarker): string {
  return JSON.stringify({ startedAt: marker.startedAt.toISOString(), finishedAt: marker.finishedAt?.toISOString() }) + '\n';
}

export function parseGcMarker(text: string): GcMarker | undefined {
  try {
    const data = JSON.parse(text) as { startedAt?: unknown; finishedAt?: unknown };
    const startedAt = new Date(String(data.startedAt));
    if (Number.isNaN(startedAt.getTime())) return undefined;
    const finishedAt = data.finishedAt === undefined ? undefined : new Date(String(data.finishedAt));
    return { startedAt, finishedAt: finishedAt && !Number.isNaN(finishedAt.getTime()) ? finishedAt : undefined };
  } catch {
    return undefined;
  }
}

/** The cache's gc marker; undefined when there is none, or it cannot be read (a server that refuses the name: no gc of ours runs there). */
export async function readGcMarker(cache: Pick<BinaryCache, 'getFile'>): Promise<GcMarker | undefined> {
  try {
    const stream = await cache.getFile(GC_MARKER_FILE);
    if (!stream) return undefined;
    return parseGcMarker(await readLimited(stream, MAX_GC_MARKER_BYTES, () => new Error(`${GC_MARKER_FILE} is too large`)));
  } catch {
    return undefined;
  }
}

/** Whether a gc described by `marker` may have deleted something while a push ran since `pushStartedAt`. */
export function gcOverlapped(marker: GcMarker | undefined, pushStartedAt: Date): boolean {
  if (!marker) return false;
  if (!marker.finishedAt) return true;
  return marker.finishedAt.getTime() + GC_CLOCK_MARGIN_MS >= pushStartedAt.getTime();
}
