import { cachixApiToken } from '../../caches/credentials.js';
import { cachixHost, openCache } from '../../caches/open.js';
import type { Context } from '../../context.js';
import { UserError } from '../../errors.js';
import { pinOnCachix } from '../../maintain/cachix-pin.js';
import { checkPinName, type KeepPolicy } from '../../maintain/pin-file.js';
import { addPinRevision, deletePin, listPins } from '../../maintain/pins.js';
import { resolveStorePaths } from '../../store/resolve-paths.js';
import { shellWord } from '../../util/shell-word.js';

export interface PinOptions {
  keepRevisions?: number;
  keepDays?: number;
  keepForever?: boolean;
  list?: boolean;
  delete?: boolean;
  artifact?: string[];
}

/** The one check of cachix's three mutually exclusive --keep-… flags; none: keep as before (or the cache's default). */
function keepPolicy(options: PinOptions): KeepPolicy | undefined {
  const given = [options.keepRevisions !== undefined, options.keepDays !== undefined, options.keepForever === true].filter(Boolean);
  if (given.length > 1) throw new UserError('give at most one of --keep-revisions, --keep-days and --keep-forever', undefined, 2);
  if (options.keepRevisions !== undefined) return { revisions: options.keepRevisions };
  if (options.keepDays !== undefined) return { days: options.keepDays };
  if (options.keepForever) return { forever: true };
  return undefined;
}

function keepText(keep: KeepPolicy): string {
  return 'forever' in keep ? 'forever' : 'revisions' in keep ? `${keep.revisions} revisions` : `${keep.days} days`;
}

/**
 * `cachix pin CACHE PIN-NAME STORE-PATH [--keep-…] [-a ARTIFACT]...`, `cachix pin CACHE --list`,
 * `cachix pin CACHE PIN-NAME --delete`: pins kept in the cache itself (maintain/pin-file.ts), or
 * by the cachix service for a cache on its API.
 */
export async function run(
  context: Context,
  cacheName: string,
  pinName: string | undefined,
  storePath: string | undefined,
  options: PinOptions,
): Promise<number> {
  const cacheArgument = shellWord(cacheName);
  const mode = options.list ? 'list' : options.delete ? 'delete' : 'add';
  if (options.list && options.delete) throw new UserError('give --list or --delete, not both', undefined, 2);
  if (mode === 'list' && pinName !== undefined)
    throw new UserError('pin --list takes only the cache', `cachix pin ${cacheArgument} --list`, 2);
  if (mode !== 'list') {
    if (pinName === undefined)
      throw new UserError(
        `which pin? cachix pin ${cacheArgument} PIN-NAME STORE-PATH`,
        `or list the pins: cachix pin ${cacheArgument} --list`,
        2,
      );
    const problem = checkPinName(pinName);
    if (problem) throw new UserError(`'${pinName}' is not a pin name: ${problem}`, undefined, 2);
  }
  if (mode === 'add' && storePath === undefined)
    throw new UserError(`pin '${pinName}' needs a store path: cachix pin ${cacheArgument} ${pinName} STORE-PATH`, undefined, 2);
  if (mode === 'delete' && storePath !== undefined) throw new UserError('pin --delete takes only the cache and the pin name', undefined, 2);
  const keep = keepPolicy(options);
  if (keep && mode !== 'add') throw new UserError('--keep-… applies when pinning a store path', undefined, 2);
  const artifacts = options.artifact ?? [];
  const opened = await openCache(cacheName, context);
  try {
    const { cache } = opened;
    if (cache.createPin) {
      if (mode !== 'add')
        throw new UserError(
          `pins of ${cacheName} are kept by the cachix service`,
          'list and delete them in the cache settings at app.cachix.org',
        );
      if (!cachixApiToken(context, opened.config, cachixHost(context, opened.config), opened.entry))
        throw new UserError(`pinning in ${cacheName} needs an auth token`, 'run `cachix authtoken --stdin` or set CACHIX_AUTH_TOKEN');
      const [resolved] = await resolveStorePaths([storePath!]);
      const pin = await pinOnCachix((request) => cache.createPin!(request), { pinName: pinName!, storePath: resolved!, artifacts, keep });
      context.stderr.write(`pinned ${pin.storePath} as ${pin.name} in ${cacheName}\n`);
      return 0;
    }
    if (artifacts.length > 0)
      throw new UserError('--artifact is for caches on the cachix API, which serve files from pinned paths', undefined, 2);
    if (mode === 'list') {
      for (const { pin, liveRevisions } of await listPins(cache, cacheArgument)) {
        const newest = pin.revisions[pin.revisions.length - 1]!;
        context.stdout.write(
          `${pin.name} ${newest.storePath} ${newest.pinnedAt.toISOString()} keep=${keepText(pin.keep)} live-revisions=${liveRevisions}\n`,
        );
      }
    } else if (mode === 'delete') {
      await deletePin(cache, pinName!, cacheArgument);
      context.stdout.write(`${pinName}\n`);
    } else {
      const [resolved] = await resolveStorePaths([storePath!]);
      await addPinRevision(cache, pinName!, resolved!, keep, cacheArgument);
      context.stdout.write(`${pinName} ${resolved}\n`);
    }
    return 0;
  } finally {
    await opened.cache.close?.();
  }
}
