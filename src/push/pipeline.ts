import { mkdir } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { hashPartOf } from '../nix/store-path.js';
import type { SigningKey } from '../nix/signing.js';
import { queryPathInfo, type PathInfo } from '../store/path-info.js';
import type { CompressionMethod } from '../util/compression.js';
import { SMALL_NAR_BYTES } from './nar-spool.js';
import { prepareNar } from './nar-upload.js';
import { narSourceOf } from './nar-source.js';
import { formatBytes, type Progress } from './progress.js';
import { Semaphore } from '../util/semaphore.js';
import { sweepStaleSpoolFiles } from './spool-sweep.js';
import { pathsGoneDuringGc } from './after-gc.js';

export interface PushOptions {
  compression: CompressionMethod;
  compressionLevel?: number | undefined;
  jobs: number;
  omitDeriver: boolean;
  /** Absent for a cache that signs on its server (BinaryCache.uploadNarSource). */
  signingKey?: SigningKey | undefined;
  /** Paths signed by a key of one of these names are served upstream and not pushed. */
  upstreamKeyNames?: readonly string[] | undefined;
}

export interface PushSummary {
  pushed: number;
  skipped: number;
  failed: number;
  narBytes: number;
  fileBytes: number;
  /** Paths left out because an upstream cache's key signed them. */
  upstream?: number;
}

/**
 * Large NARs: compressing is CPU-bound in zstd's own threads, which already use every core, so
 * one is compressed at a time; a second would only add memory. Uploading is network-bound and
 * runs beside the next compression, one at a time too, since a multipart upload holds its part
 * buffers. Small NARs run beside both, up to --jobs.
 */
const LARGE_COMPRESSIONS_AT_ONCE = 1;
const LARGE_UPLOADS_AT_ONCE = 1;

export function summaryLine(summary: PushSummary, cacheDescription: string): string {
  const pushed = `pushed ${summary.pushed} paths (${formatBytes(summary.narBytes)} of NAR, ${formatBytes(summary.fileBytes)} uploaded)`;
  const failed = summary.failed > 0 ? `, ${summary.failed} failed` : '';
  const upstream = summary.upstream ? `, ${summary.upstream} served upstream` : '';
  return `${pushed}, skipped ${summary.skipped} already in ${cacheDescription}${upstream}${failed}`;
}

/**
 * Pushes the closure of `storePaths`: what the cache lacks is uploaded `jobs` at a time, each path
 * only after the references it needs are in the cache, so a client never sees a narinfo whose
 * references are missing. The first failure stops new uploads; those in flight finish.
 */
export async function pushPaths(cache: BinaryCache, storePaths: string[], options: PushOptions, progress: Progress): Promise<PushSummary> {
  const startedAt = new Date();
  const fullClosure = storePaths.length === 0 ? [] : await queryPathInfo(storePaths, { recursive: true });
  const closure = notServedUpstream(fullClosure, options.upstreamKeyNames ?? []);
  const missingHashes = closure.length === 0 ? new Set<string>() : await cache.missing(closure.map((info) => hashPartOf(info.path)));
  const toPush = closure.filter((info) => missingHashes.has(hashPartOf(info.path)));
  const summary: PushSummary = { pushed: 0, skipped: closure.length - toPush.length, failed: 0, narBytes: 0, fileBytes: 0 };
  if (closure.length < fullClosure.length) summary.upstream = fullClosure.length - closure.length;
  progress.start(
    toPush.length,
    toPush.reduce((total, info) => total + info.narSize, 0),
  );
  if (toPush.length > 0) await uploadInOrder(cache, toPush, options, progress, summary);
  if (toPush.length > 0) {
    // A gc overlapping this push may have deleted a NAR as we wrote it again: upload those once more.
    const again = await pathsGoneDuringGc(cache, closure, startedAt);
    summary.skipped -= again.filter((info) => !missingHashes.has(hashPartOf(info.path))).length;
    if (again.length > 0) await uploadInOrder(cache, again, options, progress, summary);
  }
  return summary;
}

/** As attic's client does: a path carrying a signature by an upstream key is left to that cache. */
function notServedUpstream(closure: PathInfo[], upstreamKeyNames: readonly string[]): PathInfo[] {
  if (upstreamKeyNames.length === 0) return closure;
  const names = new Set(upstreamKeyNames);
  return closure.filter((info) => !info.sigs.some((sig) => names.has(sig.slice(0, sig.indexOf(':')))));
}

async function uploadInOrder(
  cache: BinaryCache,
  toPush: PathInfo[],
  options: PushOptions,
  progress: Progress,
  summary: PushSummary,
): Promise<void> {
  const pending = new Map(toPush.map((info) => [info.path, info]));
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const info of toPush) {
    const needed = info.references.filter((reference) => reference !== info.path && pending.has(reference));
    waitingOn.set(info.path, needed.length);
    for (const reference of needed) dependents.set(reference, [...(dependents.get(reference) ?? []), info.path]);
  }
  const ready = toPush.filter((info) => waitingOn.get(info.path) === 0).map((info) => info.path);
  const largeCompressions = new Semaphore(LARGE_COMPRESSIONS_AT_ONCE);
  const largeUploads = new Semaphore(LARGE_UPLOADS_AT_ONCE);
  const spoolDirectory = cache.spoolDirectory ?? tmpdir();
  await mkdir(spoolDirectory, { recursive: true });
  await sweepStaleSpoolFiles(spoolDirectory);
  const zstdWorkers = Math.max(1, availableParallelism());
  let firstError: unknown;
  let running = 0;

  await new Promise<void>((resolveAll) => {
    const startMore = (): void => {
      while (firstError === undefined && running < options.jobs && ready.length > 0) {
        const path = ready.shift()!;
        running++;
        void pushOne(pending.get(path)!).then(
          () => {
            running--;
            for (const dependent of dependents.get(path) ?? []) {
              const left = waitingOn.get(dependent)! - 1;
              waitingOn.set(dependent, left);
              if (left === 0) ready.push(dependent);
            }
            startMore();
          },
          (error: unknown) => {
            running--;
            summary.failed++;
            firstError ??= error;
            startMore();
          },
        );
      }
      if (running === 0) resolveAll();
    };
    startMore();
  });
  if (firstError !== undefined) {
    const unpushed = toPush.length - summary.pushed;
    if (firstError instanceof UserError)
      throw new UserError(
        firstError.message,
        firstError.hint ?? `${unpushed} paths were not pushed; run the push again once fixed`,
        firstError.exitCode,
      );
    throw firstError;
  }

  async function pushOne(info: PathInfo): Promise<void> {
    const large = info.narSize > SMALL_NAR_BYTES;
    let streamedBytes = 0;
    const onNarBytes = (bytes: number): void => {
      streamedBytes += bytes;
      progress.narBytesRead?.(bytes);
    };
    if (cache.uploadNarSource) {
      // The server compresses and signs: it gets the NAR as dumped, streamed, never spooled.
      const source = narSourceOf(info, { omitDeriver: options.omitDeriver, onNarBytes });
      const sent = await whileHolding(large ? largeUploads : undefined, () => cache.uploadNarSource!(source));
      summary.pushed++;
      summary.narBytes += info.narSize;
      summary.fileBytes += sent.sentBytes;
      progress.pathDone(info.path, info.narSize, sent.sentBytes, streamedBytes);
      return;
    }
    // Without a key (a token-only cachix push) the narinfo goes unsigned and the service signs it;
    // preparePush has made sure every other cache has one.
    const prepared = await whileHolding(large ? largeCompressions : undefined, () =>
      prepareNar(info, { ...options, signingKey: options.signingKey, zstdWorkers, onNarBytes }, spoolDirectory),
    );
    try {
      await whileHolding(large ? largeUploads : undefined, () => cache.upload(prepared.upload, prepared.narInfo));
    } finally {
      await prepared.cleanup();
    }
    summary.pushed++;
    summary.narBytes += info.narSize;
    summary.fileBytes += prepared.upload.fileSize;
    progress.pathDone(info.path, info.narSize, prepared.upload.fileSize, streamedBytes);
  }
}

async function whileHolding<T>(semaphore: Semaphore | undefined, work: () => Promise<T>): Promise<T> {
  if (!semaphore) return work();
  await semaphore.acquire();
  try {
    return await work();
  } finally {
    semaphore.release();
  }
}
