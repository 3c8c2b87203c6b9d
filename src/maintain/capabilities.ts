// The optional backend capabilities maintenance needs, asked for up front: a cache that lacks one
// is refused in one line before anything is read or deleted.
import type { BinaryCache, ListedFile } from '../caches/cache.js';
import { UserError } from '../errors.js';

export interface ListableCache extends BinaryCache {
  list(folder: string): Promise<ListedFile[]>;
}

export interface MaintainableCache extends ListableCache {
  deleteFile(relativeUrl: string): Promise<boolean>;
  putFile(relativeUrl: string, body: string | Uint8Array, contentType: string, contentEncoding?: string): Promise<void>;
}

function unsupported(cache: BinaryCache, what: string): UserError {
  const hint = cache.capabilities.serverKeepsGarbage ?? 'use a file://, http(s):// (WebDAV) or s3:// cache URL';
  return new UserError(`${cache.description} cannot ${what} through this client`, hint);
}

export function requireListing(cache: BinaryCache): ListableCache {
  if (!cache.list) throw unsupported(cache, 'list its files');
  return cache as ListableCache;
}

export function requireMaintenance(cache: BinaryCache): MaintainableCache {
  requireListing(cache);
  if (!cache.deleteFile || !cache.putFile) throw unsupported(cache, 'delete or write files');
  return cache as MaintainableCache;
}
