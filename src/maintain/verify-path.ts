import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { messageOf } from '../errors.js';
import { formatHashBase32, hashesEqual, sha256Hash } from '../nix/hash.js';
import { narInfoFingerprint, parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import { verifySignature, type PublicKey } from '../nix/signing.js';
import { hashPartOf } from '../nix/store-path.js';
import { parseNar } from '../nix/nar/parse.js';
import { NarParseError } from '../nix/nar/parse.js';
import type { PathInfo } from '../store/path-info.js';
import type { BinaryCache } from '../caches/cache.js';
import { createDecompressStream } from '../util/compression.js';

// Reads one path back from a cache as Nix would substitute it, and says what does not hold:
// the narinfo exists and parses, is signed by a trusted key, its NAR exists with the FileHash
// and FileSize it claims, and unpacks to the NarHash and NarSize it claims, which are also the
// local store's.

export interface PathVerdict {
  storePath: string;
  problems: string[];
  notes: string[];
  /** The cache has no narinfo for it (a problem, unless another cache serves it). */
  absent?: boolean;
}

interface NarDigest {
  fileHash: Uint8Array;
  fileSize: number;
  narHash: Uint8Array;
  narSize: number;
}

async function digestNar(source: Readable, compression: string): Promise<NarDigest> {
  const unpack = createDecompressStream(compression);
  if (!unpack) throw new Error(`compression '${compression}' is not supported here`);
  const fileHasher = createHash('sha256');
  const narHasher = createHash('sha256');
  let fileSize = 0;
  let narSize = 0;
  await pipeline(
    source,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        fileHasher.update(chunk);
        fileSize += chunk.length;
        yield chunk;
      }
    },
    unpack.stream,
    async (chunks: AsyncIterable<Buffer>) => {
      const counted = (async function* () {
        for await (const chunk of chunks) {
          narHasher.update(chunk);
          narSize += chunk.length;
          yield chunk;
        }
      })();
      // The NAR's structure is checked as it streams, as Nix checks it when it unpacks: a
      // truncated or malformed NAR is named as such rather than as a hash mismatch.
      for await (const entry of parseNar(counted)) void entry;
    },
  );
  await unpack.done;
  return { fileHash: fileHasher.digest(), fileSize, narHash: narHasher.digest(), narSize };
}

function sameReferences(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((value, index) => value === [...b].sort()[index]);
}

function checkNar(info: NarInfo, digest: NarDigest, problems: string[]): void {
  const fileHash = sha256Hash(digest.fileHash);
  if (info.fileHash && info.fileHash.algorithm === 'sha256' && !hashesEqual(info.fileHash, fileHash)) {
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

export async function verifyPath(
  cache: BinaryCache,
  storePath: string,
  keys: readonly PublicKey[],
  local: PathInfo | undefined,
): Promise<PathVerdict> {
  const verdict: PathVerdict = { storePath, problems: [], notes: [] };
  const problems = verdict.problems;
  let text: string | undefined;
  try {
    text = await cache.getNarInfo(hashPartOf(storePath));
  } catch (error) {
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
  const source = await cache.getFile(info.url);
  if (!source) {
    problems.push(`its NAR ${info.url} is missing`);
    return verdict;
  }
  try {
    checkNar(info, await digestNar(source, info.compression), problems);
  } catch (error) {
    if (error instanceof NarParseError) {
      problems.push(`its NAR ${info.url} does not unpack: ${error.message}`);
      return verdict;
    }
    problems.push(`its NAR ${info.url} cannot be read as ${info.compression}: ${messageOf(error)}`);
  }
  return verdict;
}
