// How a NAR is cut into multipart parts. S3 (and the cachix API, whose parts land in S3) takes
// at most 10,000 parts of 5 MiB to 5 GiB each (the last may be smaller) and objects up to 5 TiB.
// A fixed part size caps the NAR: Nix's 5 MiB parts stop at 48.8 GiB. The NAR's compressed size
// is known before its first byte goes up (it is spooled), so the part size is chosen from it:
// the preferred size while that fits in the part limit, else the smallest whole MiB that does.
// Parts are held in memory while they are sent, so bigger parts mean fewer of them at once.

import { UserError } from '../errors.js';

const MIB = 1024 * 1024;

/** S3's multipart limits (docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
export const S3_LIMITS = {
  maxParts: 10_000,
  minPartSize: 5 * MIB,
  maxPartSize: 5 * 1024 * MIB,
  maxObjectSize: 5 * 1024 * 1024 * MIB,
};

export interface PartPlanOptions {
  /** The part size used while the object fits in maxParts of it (the user's choice or our default). */
  preferredPartSize: number;
  /** Parts sent at once when parts have the preferred size. */
  preferredPartsInFlight: number;
  /** At most this many parts; S3's 10,000 unless a test forces fewer. */
  maxParts?: number;
}

export interface PartPlan {
  partSize: number;
  partCount: number;
  /** Parts in flight, so that they hold no more memory than preferred parts would (and at least one). */
  partsInFlight: number;
}

function formatGiB(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

export function planParts(objectSize: number, options: PartPlanOptions): PartPlan {
  const maxParts = options.maxParts ?? S3_LIMITS.maxParts;
  if (objectSize > S3_LIMITS.maxObjectSize) {
    throw new UserError(
      `a NAR of ${formatGiB(objectSize)} is larger than S3's object limit of 5 TiB`,
      'split the store path, or push it to a cache that is not S3 (a file:// or HTTP cache)',
    );
  }
  const needed = Math.ceil(Math.ceil(objectSize / maxParts) / MIB) * MIB;
  // The preferred size is taken as given (the CLI keeps users to S3's 5 MiB minimum).
  const partSize = Math.max(options.preferredPartSize, needed);
  if (partSize > S3_LIMITS.maxPartSize) {
    throw new UserError(
      `a NAR of ${formatGiB(objectSize)} needs parts larger than S3's 5 GiB in ${maxParts} parts`,
      'split the store path, or push it to a cache that is not S3',
    );
  }
  const budget = options.preferredPartSize * options.preferredPartsInFlight;
  const partsInFlight = Math.max(1, Math.min(options.preferredPartsInFlight, Math.floor(budget / partSize)));
  return { partSize, partCount: Math.max(1, Math.ceil(objectSize / partSize)), partsInFlight };
}
