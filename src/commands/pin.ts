import type { Context } from '../context.js';
import { pinOnCachix } from '../maintain/cachix-pin.js';

interface PinOptions {
  artifact: string[];
  keepDays?: number;
  keepRevisions?: number;
  keepForever?: boolean;
}

/** `cachix pin CACHE PIN-NAME STORE-PATH [-a ARTIFACT]... [--keep-days N | --keep-revisions N | --keep-forever]`. */
export async function run(context: Context, cacheName: string, pinName: string, storePath: string, options: PinOptions): Promise<void> {
  const pin = await pinOnCachix(context, {
    cacheName,
    pinName,
    storePath,
    artifacts: options.artifact,
    keepDays: options.keepDays,
    keepRevisions: options.keepRevisions,
    keepForever: options.keepForever,
  });
  context.stderr.write(`pinned ${pin.storePath} as ${pin.name} in ${cacheName}\n`);
}
