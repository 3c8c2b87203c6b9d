import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { waitUntil } from './wait.js';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  /** Set by run(): the Node server s3rver listens with. */
  httpServer?: Server;
}

/** Requests each running s3rver (by its directory) has not finished answering. */
const requestsInFlight = new Map<string, () => number>();
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

export interface RunningS3rver {
  /** http://127.0.0.1:PORT: the endpoint= for s3:// URLs. */
  endpoint: string;
  bucket: string;
  /** `s3://BUCKET?endpoint=…&scheme=http&region=us-east-1`. */
  s3Url: string;
  /** The bucket over plain HTTP, readable anonymously: a substituter URL for Nix 2.8. */
  httpUrl: string;
  directory: string;
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  stop(): Promise<void>;
}

/**
 * A real s3rver (an S3 API on the filesystem) with one bucket. It checks SigV4 signatures of
 * signed requests (credentials S3RVER/S3RVER) and serves unsigned GETs, so Nix can read the
 * bucket over http as a substituter without any bucket policy.
 */
export async function startS3rver(bucket = 'nix-cache'): Promise<RunningS3rver> {
  let S3rver: S3rverClass;
  try {
    S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  } catch {
    throw new Error('these tests need s3rver: npm install --save-dev s3rver@3');
  }
  const directory = await mkdtemp(join(tmpdir(), 'cachix-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
  const address = await server.run();
  // A request ends (its response closes) when s3rver has answered it or its client has gone.
  let inFlight = 0;
  server.httpServer?.on('request', (_request, response) => {
    inFlight++;
    response.once('close', () => inFlight--);
  });
  requestsInFlight.set(directory, () => inFlight);
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    bucket,
    s3Url: `s3://${bucket}?endpoint=127.0.0.1:${address.port}&scheme=http&region=us-east-1`,
    httpUrl: `${endpoint}/${bucket}`,
    directory,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    async stop() {
      requestsInFlight.delete(directory);
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * S3 makes an object visible only once its PUT has completed; s3rver writes the body straight
 * under the object's name and marks completion by writing `<object>.md5` afterwards. A client
 * killed mid-PUT therefore leaves s3rver holding a half object that real S3 (or MinIO, R2...)
 * never would. After a kill, tests call this to give s3rver S3's semantics: objects whose PUT
 * never completed are removed, complete ones are untouched.
 */
export async function discardIncompletePuts(directory: string): Promise<string[]> {
  // Look once s3rver has seen the dropped connections: every request it was answering has ended.
  const inFlight = requestsInFlight.get(directory);
  if (!inFlight) throw new Error(`no s3rver started by startS3rver keeps its objects in ${directory}`);
  await waitUntil("s3rver to see the killed client's requests end", () => inFlight() === 0, { timeoutMs: 10_000, intervalMs: 10 });
  const discarded: string[] = [];
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('._S3rver_object')) continue;
    const object = join(entry.parentPath, entry.name);
    const completed = await stat(`${object}.md5`).then(
      () => true,
      () => false,
    );
    if (completed) continue;
    await rm(object, { force: true });
    discarded.push(object.slice(directory.length + 1));
  }
  return discarded;
}

/** An S3 client of the test's own for this s3rver, or moto (path-style, its credentials); destroy it after use. */
export function s3ClientFor(s3: Pick<RunningS3rver, 'endpoint' | 'env'>): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY },
  });
}
