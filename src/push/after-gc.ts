// After a push: if a gc ran meanwhile (caches/gc-marker.ts), make sure everything this push
// needs is still there, and push again what is not. Without a gc overlapping, this costs one
// small read.
import type { BinaryCache } from '../caches/cache.js';
import { gcOverlapped, readGcMarker } from '../caches/gc-marker.js';
import { hashPartOf } from '../nix/store-path.js';
import { parseNarInfo } from '../nix/narinfo.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { LOOKUP_CONCURRENCY } from '../caches/cache.js';

/** Whether the file exists; the body is not read (a NAR may be gigabytes). */
async function fileExists(cache: BinaryCache, relative: string): Promise<boolean> {
  const stream = await cache.getFile(relative);
  if (!stream) return false;
  stream.on('error', () => undefined);
  stream.destroy();
  return true;
}

/** The paths of `closure` that a gc overlapping the push since `startedAt` left without a narinfo or a NAR. */
export async function pathsGoneDuringGc(cache: BinaryCache, closure: readonly string[], startedAt: Date): Promise<string[]> {
  if (!gcOverlapped(await readGcMarker(cache), startedAt)) return [];
  const missing = await cache.missing(closure.map(hashPartOf));
  const gone = new Set(closure.filter((path) => missing.has(hashPartOf(path))));
  await forEachConcurrently(
    closure.filter((path) => !gone.has(path)),
    LOOKUP_CONCURRENCY,
    async (path) => {
      const text = await cache.getNarInfo(hashPartOf(path));
      if (text === undefined) return void gone.add(path);
      let url: string;
      try {
        url = parseNarInfo(text).url;
      } catch {
        return;
      }
      if (!(await fileExists(cache, url))) gone.add(path);
    },
  );
  return closure.filter((path) => gone.has(path));
}
