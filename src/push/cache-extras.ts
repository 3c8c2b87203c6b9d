// What Nix reads from a cache besides narinfos and NARs: build logs (`log/<drv>`), NAR listings
// (`<hash>.ls`) and the debug-info index (`debuginfo/<build-id>`), written as `nix copy` and
// `nix store copy-log` write them. Listings and debug-info entries go up after the NAR and before
// the narinfo, as Nix's own order, so a narinfo never names a path whose listing is still to come.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliCompressSync } from 'node:zlib';
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { debugInfoJson } from '../nix/nar/listing.js';
import type { NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import { readBuildLog } from '../store/build-log.js';
import { compressWhole, createXzCompressStream } from '../util/compression.js';
import type { NarListing } from './nar/listing.js';

export type ExtraCompression = 'br' | 'xz' | 'zstd';
const EXTRA_COMPRESSIONS = new Set<string>(['br', 'xz', 'zstd']);

export interface NarExtras {
  logs: boolean;
  listings: boolean;
  debugInfo: boolean;
  /** From the cache URL's log-compression= / ls-compression=, as Nix takes them (HTTP and S3 only). */
  logCompression?: ExtraCompression | undefined;
  lsCompression?: ExtraCompression | undefined;
}

export interface ExtrasTally {
  logsUploaded: number;
  /** Pushed paths whose deriver has no log in this store (substituted, or built elsewhere). */
  logsMissing: number;
}

/** The compression a URL parameter names, or an error naming the parameter. */
export function extraCompression(url: URL, parameter: string): ExtraCompression | undefined {
  const value = url.searchParams.get(parameter);
  if (value === null || value === '' || value === 'none') return undefined;
  if (!EXTRA_COMPRESSIONS.has(value)) throw new Error(`${parameter}=${value} is not one of br, xz, zstd, none`);
  return value as ExtraCompression;
}

/**
 * What the URL of cache `cacheName` asks of logs and listings: Nix honours these for HTTP and S3
 * caches, never a file cache, which it reads raw. A value Nix does not take is the user's to fix.
 */
export function urlExtraCompressions(url: URL, cacheName: string): Pick<NarExtras, 'logCompression' | 'lsCompression'> {
  if (url.protocol === 'file:') return {};
  try {
    return { logCompression: extraCompression(url, 'log-compression'), lsCompression: extraCompression(url, 'ls-compression') };
  } catch (error) {
    throw new UserError(`${(error as Error).message} in the URL of ${cacheName}`, 'use br, xz, zstd or none, as Nix takes them');
  }
}

async function compressed(method: ExtraCompression | undefined, body: Buffer): Promise<Buffer> {
  if (method === undefined) return body;
  if (method === 'br') return brotliCompressSync(body);
  if (method === 'zstd') return compressWhole('zstd', undefined, body)!;
  const xz = createXzCompressStream(undefined);
  const chunks: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await pipeline(Readable.from([body]), xz.stream, collect);
  await xz.done;
  return Buffer.concat(chunks);
}

/** A log, listing or debug-info entry, compressed by `method` and sent with it as Content-Encoding. */
export async function putExtra(
  cache: BinaryCache,
  name: string,
  body: Buffer,
  contentType: string,
  method: ExtraCompression | undefined,
): Promise<void> {
  await cache.putFile!(name, await compressed(method, body), contentType, method);
}

/** `<hash>.ls` and the `debuginfo/` entries of one NAR, when asked for. */
export async function writeListingFiles(cache: BinaryCache, narInfo: NarInfo, listing: NarListing, extras: NarExtras): Promise<void> {
  if (extras.listings) {
    await putExtra(cache, `${hashPartOf(narInfo.storePath)}.ls`, Buffer.from(listing.json), 'application/json', extras.lsCompression);
  }
  if (extras.debugInfo) {
    for (const member of listing.debugInfo) {
      await cache.putFile!(`debuginfo/${member.buildId}`, debugInfoJson(member, narInfo.url), 'application/json');
    }
  }
}

/** The build log of a pushed path's deriver, once per derivation; no log is counted, not an error. */
export async function writeBuildLog(
  cache: BinaryCache,
  deriver: string | undefined,
  extras: NarExtras,
  seen: Set<string>,
  tally: ExtrasTally,
): Promise<void> {
  if (!deriver) {
    tally.logsMissing++;
    return;
  }
  if (seen.has(deriver)) return;
  seen.add(deriver);
  const log = await readBuildLog(deriver);
  if (!log) {
    tally.logsMissing++;
    return;
  }
  const name = deriver.slice(deriver.lastIndexOf('/') + 1);
  await putExtra(cache, `log/${name}`, log, 'text/plain; charset=utf-8', extras.logCompression);
  tally.logsUploaded++;
}
