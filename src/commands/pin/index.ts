import { openCache } from '../../caches/open.js';
import type { Context } from '../../context.js';
import { UserError } from '../../errors.js';
import { checkPinName } from '../../maintain/pin-file.js';
import { addPin } from './add.js';
import { deletePin } from './delete.js';
import { listPins } from './list.js';
import { run as pinOnCachixApi } from '../pin.js';

export interface PinOptions {
  keepRevisions?: number;
  keepDays?: number;
  keepForever?: boolean;
  list?: boolean;
  delete?: boolean;
  artifact?: string[];
}

function keepPolicy(options: PinOptions) {
  const given = [options.keepRevisions !== undefined, options.keepDays !== undefined, options.keepForever === true].filter(Boolean);
  if (given.length > 1) throw new UserError('give at most one of --keep-revisions, --keep-days and --keep-forever', undefined, 2);
  if (options.keepRevisions !== undefined) {
    if (options.keepRevisions < 1)
      throw new UserError('--keep-revisions must be at least 1 (the newest revision is always kept)', undefined, 2);
    return { revisions: options.keepRevisions };
  }
  if (options.keepDays !== undefined) return { days: options.keepDays };
  if (options.keepForever) return { forever: true as const };
  return undefined;
}

/**
 * `cachix pin CACHE PIN-NAME STORE-PATH [--keep-…]`, `cachix pin CACHE --list`,
 * `cachix pin CACHE PIN-NAME --delete`: pins kept in the cache itself (maintain/pin-file.ts).
 */
export async function run(
  context: Context,
  cacheName: string,
  pinName: string | undefined,
  storePath: string | undefined,
  options: PinOptions,
): Promise<number> {
  const mode = options.list ? 'list' : options.delete ? 'delete' : 'add';
  if (options.list && options.delete) throw new UserError('give --list or --delete, not both', undefined, 2);
  if (mode === 'list' && pinName !== undefined) throw new UserError('pin --list takes only the cache', 'cachix pin CACHE --list', 2);
  if (mode !== 'list') {
    if (pinName === undefined)
      throw new UserError('which pin? cachix pin CACHE PIN-NAME STORE-PATH', 'or list the pins: cachix pin CACHE --list', 2);
    const problem = checkPinName(pinName);
    if (problem) throw new UserError(`'${pinName}' is not a pin name: ${problem}`, undefined, 2);
  }
  if (mode === 'add' && storePath === undefined)
    throw new UserError(`pin '${pinName}' needs a store path: cachix pin CACHE ${pinName} STORE-PATH`, undefined, 2);
  if (mode === 'delete' && storePath !== undefined) throw new UserError('pin --delete takes only the cache and the pin name', undefined, 2);
  const keep = keepPolicy(options);
  if (keep && mode !== 'add') throw new UserError('--keep-… applies when pinning a store path', undefined, 2);
  const opened = await openCache(cacheName, context);
  if (opened.cache.capabilities.pins === 'service') {
    await opened.cache.close?.();
    // The cachix service keeps pins itself: the same command goes to its API.
    if (mode !== 'add')
      throw new UserError(
        `pins of ${cacheName} are kept by the cachix service`,
        'list and delete them in the cache settings at app.cachix.org',
      );
    await pinOnCachixApi(context, cacheName, pinName!, storePath!, {
      artifact: options.artifact ?? [],
      keepDays: options.keepDays,
      keepRevisions: options.keepRevisions,
      keepForever: options.keepForever,
    });
    return 0;
  }
  if ((options.artifact ?? []).length > 0)
    throw new UserError('--artifact is for caches on the cachix API, which serve files from pinned paths', undefined, 2);
  try {
    if (mode === 'list') return await listPins(context, opened.cache);
    if (mode === 'delete') return await deletePin(context, opened.cache, pinName!);
    return await addPin(context, opened.cache, pinName!, storePath!, keep);
  } finally {
    await opened.cache.close?.();
  }
}
