import type { Context } from '../context.js';
import type { CopyFlags } from '../copy/prepare-copy.js';
import { UserError } from '../errors.js';

/**
 * `cachix import CACHE S3-URI`, as cachix has it: everything in an S3 binary cache into a cachix
 * API cache. It is `copy S3-URI CACHE`, with copy's checks.
 */
export async function run(context: Context, cache: string, s3Uri: string, flags: CopyFlags): Promise<number> {
  if (!s3Uri.startsWith('s3://')) {
    throw new UserError(
      `'${s3Uri}' is not an S3 URI`,
      'give it as s3://BUCKET?region=...&endpoint=..., or use cachix copy for other caches',
    );
  }
  const { runCopy } = await import('../copy/run-copy.js');
  return runCopy(context, s3Uri, cache, [], { ...flags, onlyCachixApi: true });
}
