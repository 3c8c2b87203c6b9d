import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { RunningS3rver } from './s3rver.js';

/** A file of a cache as the server stores it, for recounting what `cachix info` reports. */
export interface StoredFile {
  name: string;
  size: number;
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
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY },
  });
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
