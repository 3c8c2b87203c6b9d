// Copies what the destination lacks, references before referrers, `jobs` at a time: each NAR
// read from the source, checked, staged (or streamed to a server that signs), uploaded before its
// narinfo. A path that fails (bad signature, corrupted NAR) is named and the rest go on; what
// needs it is not copied, so the destination never names a reference it lacks.
import { mkdir } from 'node:fs/promises';
import { stagingDirectory } from '../caches/nar-staging.js';
import { messageOf, UserError } from '../errors.js';
import { narInfoFingerprint, type NarInfo } from '../nix/narinfo.js';
import { verifySignature } from '../nix/signing.js';
import { hashPartOf } from '../nix/store-path.js';
import { narSourceFromCache, stageCopiedNar, type CopiedNar } from '../push/nar/from-cache.js';
import { stagedUpload } from '../push/nar/staged.js';
import { signedNarInfo } from '../push/narinfo-signature.js';
import { formatBytes } from '../util/quantities.js';
import { inDependencyOrder } from '../util/dependency-order.js';
import { holdIfAsked } from '../util/test-hold.js';
import type { ExtrasCopier } from './copy-extras.js';
import type { PreparedCopy } from './prepare-copy.js';
import type { SourceSelection } from './source-paths.js';
import type { PushTally } from '../push/push-options.js';

export interface CopySummary {
  copied: number;
  skipped: number;
  failed: number;
  narBytes: number;
  fileBytes: number;
}

/** A NAR that does not match its narinfo in the source: named, with what differs. */
function corruptedInSource(sourceName: string) {
  return (info: { path: string }, what: string): UserError =>
    new UserError(
      `${info.path} in ${sourceName} does not match its narinfo (${what}): refused, nothing of it was copied`,
      `check it with: cachix verify ${sourceName} ${info.path}`,
    );
}

function checkSignature(prepared: PreparedCopy, narInfo: NarInfo): void {
  const keys = prepared.sourceKeys;
  if (!keys) return;
  const fingerprint = narInfoFingerprint(narInfo);
  if (narInfo.sigs.some((sig) => verifySignature(sig, fingerprint, keys))) return;
  throw new UserError(
    `${narInfo.storePath} in ${prepared.sourceName} has no signature by ${keys.map((key) => key.name).join(', ')}${narInfo.sigs.length === 0 ? ' (it is unsigned)' : ''}: refused`,
    'copy it anyway with --no-check-sigs, or give the key that signs it with --public-key',
  );
}

export function copySummaryLine(
  summary: CopySummary,
  destination: string,
  extras?: { logs: number; listings: number; debugInfo: number },
): string {
  const copied = `copied ${summary.copied} paths (${formatBytes(summary.narBytes)} of NAR, ${formatBytes(summary.fileBytes)} uploaded)`;
  const failed = summary.failed > 0 ? `, ${summary.failed} not copied` : '';
  const carried = extras ? `; ${extras.logs} build logs, ${extras.listings} listings, ${extras.debugInfo} debug-info entries` : '';
  return `${copied}, skipped ${summary.skipped} already in ${destination}${failed}${carried}`;
}

export async function copyPaths(
  prepared: PreparedCopy,
  selection: SourceSelection,
  extras: ExtrasCopier | undefined,
  tally?: PushTally,
): Promise<CopySummary> {
  const { source, destination, progress } = prepared;
  const hashParts = [...selection.paths.keys()];
  const missing = hashParts.length === 0 ? new Set<string>() : await destination.missing(hashParts);
  const toCopy = hashParts.filter((hashPart) => missing.has(hashPart));
  const summary: CopySummary = { copied: 0, skipped: hashParts.length - toCopy.length, failed: 0, narBytes: 0, fileBytes: 0 };
  const infoOf = (hashPart: string): NarInfo => selection.paths.get(hashPart)!.narInfo;
  if (tally) tally.planned = toCopy.length;
  progress.start(
    toCopy.length,
    toCopy.reduce((total, hashPart) => total + infoOf(hashPart).narSize, 0),
  );
  const mismatch = corruptedInSource(prepared.sourceName);
  const serverSigns = destination.capabilities.signs === 'server';
  if (!serverSigns && toCopy.length > 0) await mkdir(stagingDirectory(destination.capabilities.staging), { recursive: true });

  const copyOne = async (hashPart: string): Promise<void> => {
    const sourceInfo = infoOf(hashPart);
    checkSignature(prepared, sourceInfo);
    let streamedBytes = 0;
    const copied: CopiedNar = {
      source,
      narInfo: sourceInfo,
      mismatch,
      onNarBytes: (bytes) => {
        streamedBytes += bytes;
        progress.narBytesRead?.(bytes);
      },
    };
    if (serverSigns) {
      const sent = await destination.uploadNarSource!(narSourceFromCache(copied, prepared.omitDeriver));
      summary.fileBytes += sent.sentBytes;
      progress.pathDone(sourceInfo.storePath, sourceInfo.narSize, sent.sentBytes, streamedBytes);
    } else {
      const staged = await stageCopiedNar(copied, destination.capabilities.staging, prepared.recompression(sourceInfo.compression));
      const unsigned: NarInfo = {
        ...staged.narInfo,
        deriver: prepared.omitDeriver ? undefined : sourceInfo.deriver,
        sigs: [],
      };
      const carried = prepared.keepSourceSigs ? sourceInfo.sigs : [];
      const narInfo = signedNarInfo(
        { ...unsigned, sigs: carried },
        {
          path: sourceInfo.storePath,
          narHash: sourceInfo.narHash,
          narSize: sourceInfo.narSize,
          references: sourceInfo.references,
          sigs: carried,
        },
        prepared.signingKey,
      );
      const upload = stagedUpload(staged);
      try {
        await holdIfAsked('copy-staged');
        if (extras) await extras.beforeNarInfo(sourceInfo, narInfo.url);
        await destination.upload(upload.upload, narInfo);
      } finally {
        upload.cleanup();
      }
      summary.fileBytes += staged.fileSize;
      progress.pathDone(sourceInfo.storePath, sourceInfo.narSize, staged.fileSize, streamedBytes);
    }
    if (extras) await extras.afterNarInfo(sourceInfo);
    summary.copied++;
    if (tally) tally.pushed = summary.copied;
    summary.narBytes += sourceInfo.narSize;
    await holdIfAsked('copy-path-done');
  };

  const references = (hashPart: string): string[] => infoOf(hashPart).references.map(hashPartOf);
  const outcomes = await inDependencyOrder(toCopy, references, prepared.jobs, copyOne);
  for (const outcome of outcomes) {
    if (outcome.status === 'done') continue;
    summary.failed++;
    const storePath = infoOf(outcome.key).storePath;
    if (outcome.status === 'failed') {
      const error = outcome.error;
      const hint = error instanceof UserError && error.hint ? ` (${error.hint})` : '';
      progress.log(`error: ${error instanceof UserError ? error.message : `${storePath}: ${messageOf(error)}`}${hint}`);
    } else {
      progress.log(`not copied: ${storePath} needs ${infoOf(outcome.by).storePath}, which was not copied`);
    }
  }
  return summary;
}
