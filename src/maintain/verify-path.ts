import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { messageOf, NotABinaryCacheError } from '../errors.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../nix/hash.js';
import { narInfoFingerprint, parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import { verifySignature, type PublicKey } from '../nix/signing.js';
import { hashPartOf } from '../nix/store-path.js';
import { listingDifference } from '../nix/nar/listing.js';
import { NarParseError } from '../nix/nar/parser.js';
import type { PathInfo } from '../store/path-info.js';
import type { BinaryCache } from '../caches/cache.js';
import { narDigests, type NarDigestJob } from './digest-pool.js';
import { digestHere, FILE_HERE_MAX, NAR_HERE_MAX, type DigestWants, type NarDigest } from './nar-digest.js';
import { readStoredListing } from './stored-listing.js';

// Reads one path back from a cache as Nix would substitute it, and says what does not hold:
// the narinfo exists and parses, is signed by a trusted key, its NAR exists with the FileSize it
// claims and unpacks, whole and well formed, to the NarHash and NarSize it claims, which are also
// the local store's; its `.ls`, when the cache has one, lists what the NAR holds. The FileHash
// (not signed, never checked by Nix) only when asked.

export interface VerifyChecks {
  /** Also hash the NAR file as stored and compare it with the narinfo's FileHash. */
  fileHash: boolean;
  /** Hash parts whose `.ls` a listing of the cache showed absent (verify-listings.ts): not asked for. */
  absentListings?: ReadonlySet<string> | undefined;
}

export interface PathVerdict {
  storePath: string;
  problems: string[];
  notes: string[];
  /** The cache has no narinfo for it (a problem, unless another cache serves it). */
  absent?: boolean;
}

/** A NAR file to digest: on this machine (a worker reads it), or a stream read here. */
type NarFile = { path: string } | { stream: Readable };

async function openNarFile(cache: BinaryCache, url: string): Promise<NarFile | undefined> {
  if (cache.localFile) {
    const path = await cache.localFile(url);
    return path === undefined ? undefined : { path };
  }
  const stream = await cache.getFile(url);
  return stream && { stream };
}

/**
 * One pass over the cache's file: a small one digested here, a large one handed to the digest
 * workers, which spread it over the cores.
 */
async function digestNar(file: NarFile, info: NarInfo, wants: DigestWants): Promise<NarDigest> {
  const fileSize = info.fileSize ?? info.narSize;
  if (fileSize <= FILE_HERE_MAX && info.narSize <= NAR_HERE_MAX) {
    const source = 'path' in file ? [await readFile(file.path)] : (file.stream as AsyncIterable<Buffer>);
    return digestHere(source, info.compression, wants);
  }
  let job: NarDigestJob | undefined;
  try {
    job = await narDigests().start({ ...info, ...wants, path: 'path' in file ? file.path : undefined });
    if ('stream' in file) for await (const chunk of file.stream as AsyncIterable<Buffer>) await job.write(chunk);
    return await job.end();
  } catch (error) {
    job?.abort();
    throw error;
  } finally {
    if ('stream' in file) file.stream.destroy();
  }
}

function sameReferences(a: readonly string[], b: readonly string[]): boolean {
  const sortedB = [...b].sort();
  return a.length === b.length && [...a].sort().every((value, index) => value === sortedB[index]);
}

function checkNar(info: NarInfo, digest: NarDigest, problems: string[]): void {
  const fileHash = digest.fileHash && sha256Hash(digest.fileHash);
  if (fileHash && info.fileHash && info.fileHash.algorithm === 'sha256' && !hashesEqual(info.fileHash, fileHash)) {
    problems.push(`NAR file hash is ${formatHashBase32(fileHash)}, narinfo says ${formatHashBase32(info.fileHash)}`);
  }
  if (info.fileSize !== undefined && info.fileSize !== digest.fileSize)
    problems.push(`NAR file is ${digest.fileSize} bytes, narinfo says ${info.fileSize}`);
  const narHash = sha256Hash(digest.narHash);
  if (!hashesEqual(info.narHash, narHash))
    problems.push(`NAR unpacks to ${formatHashBase32(narHash)}, narinfo says ${formatHashBase32(info.narHash)}`);
  if (info.narSize !== digest.narSize) problems.push(`NAR unpacks to ${digest.narSize} bytes, narinfo says ${info.narSize}`);
}

function checkAgainstLocal(info: NarInfo, local: PathInfo, problems: string[]): void {
  if (!hashesEqual(info.narHash, local.narHash))
    problems.push(`narinfo NarHash ${formatHashBase32(info.narHash)} differs from the local store's ${formatHashBase32(local.narHash)}`);
  if (info.narSize !== local.narSize) problems.push(`narinfo NarSize ${info.narSize} differs from the local store's ${local.narSize}`);
  if (!sameReferences(info.references, local.references)) problems.push('narinfo References differ from the local store');
}

/**
 * The order to check paths in: NARs big enough for the workers first, largest first (by the local
 * store's NarSize), so the last to finish are small and no core waits alone on a big one at the
 * end; the rest in the order given, so results still print as they come.
 */
export function verifyOrder<T>(items: readonly T[], narSizeOf: (item: T) => number | undefined): T[] {
  const large = items.filter((item) => (narSizeOf(item) ?? 0) > NAR_HERE_MAX);
  if (large.length === 0) return [...items];
  large.sort((a, b) => narSizeOf(b)! - narSizeOf(a)!);
  return [...large, ...items.filter((item) => (narSizeOf(item) ?? 0) <= NAR_HERE_MAX)];
}

/**
 * Starts the threads that digest large NARs, when some path is large as the local store knows
 * it, so their start-up overlaps reading the first narinfos. Small NARs need none.
 */
export function prepareVerify(narSizes: ReadonlyArray<number | undefined>): void {
  if (narSizes.some((narSize) => narSize !== undefined && narSize > NAR_HERE_MAX)) narDigests().warm();
}

export async function verifyPath(
  cache: BinaryCache,
  storePath: string,
  keys: readonly PublicKey[],
  local: PathInfo | undefined,
  checks: VerifyChecks,
): Promise<PathVerdict> {
  const verdict: PathVerdict = { storePath, problems: [], notes: [] };
  const problems = verdict.problems;
  let text: string | undefined;
  try {
    text = await cache.getNarInfo(hashPartOf(storePath));
  } catch (error) {
    // A server that is no cache at all is one error, not one failure per path.
    if (error instanceof NotABinaryCacheError) throw error;
    // One bad narinfo (oversized, cut off) is this path's failure; the other paths still get checked.
    problems.push(`its narinfo cannot be read: ${messageOf(error)}`);
    return verdict;
  }
  if (text === undefined) {
    verdict.absent = true;
    problems.push('the cache has no narinfo for it');
    return verdict;
  }
  let info: NarInfo;
  try {
    info = parseNarInfo(text);
  } catch (error) {
    problems.push(`its narinfo does not parse: ${messageOf(error)}`);
    return verdict;
  }
  if (info.storePath !== storePath) problems.push(`its narinfo is for ${info.storePath}`);
  const fingerprint = narInfoFingerprint(info);
  if (!info.sigs.some((sig) => verifySignature(sig, fingerprint, keys))) {
    problems.push(
      info.sigs.length === 0 ? 'its narinfo is not signed' : `no signature verifies with ${keys.map((key) => key.name).join(', ')}`,
    );
  }
  if (local) checkAgainstLocal(info, local, problems);
  else verdict.notes.push('not in the local store, so only checked against the cache');
  const hashPart = hashPartOf(storePath);
  const listingName = `${hashPart}.ls`;
  const [file, storedListing] = await Promise.all([
    openNarFile(cache, info.url),
    checks.absentListings?.has(hashPart)
      ? undefined
      : readStoredListing(cache, hashPart).catch((error: unknown) => {
          problems.push(`its listing ${listingName} cannot be read: ${messageOf(error)}`);
          return undefined;
        }),
  ]);
  if (!file) {
    problems.push(`its NAR ${info.url} is missing`);
    return verdict;
  }
  try {
    // The listing is built from the same parse that checks the NAR: no second read.
    const digest = await digestNar(file, info, { fileHash: checks.fileHash, listing: storedListing !== undefined });
    checkNar(info, digest, problems);
    if (storedListing !== undefined && digest.listing !== undefined) {
      const difference = listingDifference(storedListing, digest.listing);
      if (difference !== undefined) problems.push(`its listing ${listingName} does not match its NAR: ${difference}`);
    }
  } catch (error) {
    if (error instanceof NarParseError) {
      problems.push(`its NAR ${info.url} does not unpack: ${error.message}`);
      return verdict;
    }
    problems.push(`its NAR ${info.url} cannot be read as ${info.compression}: ${messageOf(error)}`);
  }
  return verdict;
}
