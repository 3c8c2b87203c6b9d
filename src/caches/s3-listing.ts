// Listing an S3 cache with ListObjectsV2: the names directly under its prefix, a page at a time
// from a given key on (lookups, listed-lookup.ts), or every file of a folder with its size and
// date (info, pin, gc, delete).
import type { S3Client } from '@aws-sdk/client-s3';
import type { ListedFile } from './cache.js';
import type { ListingPage } from './listed-lookup.js';

export interface S3ListTarget {
  client: S3Client;
  bucket: string;
  /** The cache's prefix in the bucket ('' or ending in '/'). */
  prefix: string;
  /** Sends one request with retries and pacing; a failure as the server gave it (a lookup falls back on it). */
  attempts<T>(what: string, request: () => Promise<T>): Promise<T>;
  /** The same, a failure said in one line the user can act on. */
  call<T>(what: string, request: () => Promise<T>): Promise<T>;
}

/** One ListObjectsV2 page of the names directly under the cache's prefix, after `startAfter`. */
export async function listRootPage(target: S3ListTarget, startAfter: string, maxKeys: number): Promise<ListingPage> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const { client, bucket, prefix } = target;
  const page = await target.attempts(`list after ${startAfter} in`, () =>
    client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        Delimiter: '/',
        StartAfter: prefix + startAfter,
        MaxKeys: maxKeys,
      }),
    ),
  );
  const names = [
    ...(page.Contents ?? []).map((object) => object.Key ?? ''),
    ...(page.CommonPrefixes ?? []).map((folder) => folder.Prefix ?? ''),
  ].map((key) => key.slice(prefix.length));
  return { names, truncated: page.IsTruncated === true };
}

/** ListObjectsV2, a page of up to 1000 keys at a time, only the keys directly in `folder`. */
export async function listFolder(target: S3ListTarget, folder: string): Promise<ListedFile[]> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const { client, bucket } = target;
  const prefix = target.prefix + folder;
  const files: ListedFile[] = [];
  let continuationToken: string | undefined;
  do {
    const page = await target.call(`list ${folder || '/'} in`, () =>
      client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: continuationToken })),
    );
    for (const object of page.Contents ?? []) {
      if (!object.Key || object.Key === prefix) continue;
      files.push({
        name: folder + object.Key.slice(prefix.length),
        size: object.Size ?? 0,
        modified: object.LastModified ?? new Date(0),
      });
    }
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken);
  return files;
}
