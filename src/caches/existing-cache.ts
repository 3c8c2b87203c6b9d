// Whether a URL already holds a binary cache: `create` there must not reset its settings or give
// it a second key, since everyone who trusts the first would reject what the second signs.
import { UserError } from '../errors.js';
import { parseNixCacheInfo, type NixCacheInfo } from '../nix/cache-info.js';
import { readLimited } from '../util/read-limited.js';
import { shellWord } from '../util/shell-word.js';
import type { BinaryCache } from './cache.js';

const MAX_CACHE_INFO_BYTES = 64 * 1024;

/** The cache's nix-cache-info, or undefined when it has none (a fresh place for a cache). */
export async function existingCacheInfo(cache: BinaryCache): Promise<NixCacheInfo | undefined> {
  const stream = await cache.getFile('nix-cache-info');
  if (!stream) return undefined;
  const text = await readLimited(
    stream,
    MAX_CACHE_INFO_BYTES,
    () => new UserError(`${cache.description}/nix-cache-info is larger than ${MAX_CACHE_INFO_BYTES} bytes, which no real one is`),
    (error) => error,
  );
  return parseNixCacheInfo(text);
}

export function alreadyACacheError(name: string, url: string, info: NixCacheInfo): UserError {
  return new UserError(
    `${url} already holds a binary cache (Priority ${info.priority}, WantMassQuery ${info.wantMassQuery ? 1 : 0}); ` +
      'creating it again would reset those and make a new key that nobody trusts yet',
    [
      'to register it as it is, with its key:',
      `      CACHIX_SIGNING_KEY=<its secret key> cachix create ${name} --url ${shellWord(url)}`,
      '  or without a key (someone else signs):',
      `      cachix create ${name} --url ${shellWord(url)} --no-signing-key`,
      '  or to start it afresh (new key, new nix-cache-info), add --force',
    ].join('\n'),
  );
}
