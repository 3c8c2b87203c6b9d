import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { hashOf } from './nix.js';
import { s3ClientFor, type RunningS3rver } from './s3rver.js';

/** A file of a cache as the server stores it, for recounting what `cachix info` reports. */
export interface StoredFile {
  name: string;
  size: number;
}

/** Whether the cache directory (a file:// cache, nginx's root) holds a narinfo for store path `path`. */
export function hasNarinfo(cacheDir: string, path: string): boolean {
  return existsSync(join(cacheDir, `${hashOf(path)}.narinfo`));
}

/** Every file under a cache directory (file:// caches, nginx's root), names relative to it. */
export async function filesUnder(root: string): Promise<StoredFile[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  const files: StoredFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.push({ name: path.slice(root.length + 1), size: (await stat(path)).size });
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Every object under `prefix` in the s3rver bucket, through the S3 API (ListObjectsV2, paged). */
export async function objectsUnder(s3: RunningS3rver, prefix: string): Promise<StoredFile[]> {
  const client = s3ClientFor(s3);
  const files: StoredFile[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) files.push({ name: object.Key!.slice(prefix.length), size: object.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  client.destroy();
  return files.sort((a, b) => (a.name < b.name ? -1 : 1));
}
