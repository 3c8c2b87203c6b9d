// The AWS SDK's S3 client, set up for a cache: our retries, idle timeouts, path-style addressing
// for S3-compatible servers. The SDK is large: it is imported only here, when a client is made.
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Location } from './s3-location.js';

export async function createS3Client(
  location: S3Location,
  timeouts: { connectMs?: number; idleMs?: number } | undefined,
): Promise<S3Client> {
  // The SDK warns on Node < 22 about its own future releases; our users cannot act on that.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client: Client } = await import('@aws-sdk/client-s3');
  const { region, endpoint, profile } = location;
  return new Client({
    region,
    endpoint,
    profile,
    // Virtual-host addressing needs DNS for every bucket; S3-compatible servers want paths.
    forcePathStyle: endpoint !== undefined,
    // Retries are ours (withRetry through the pace), so every throttling answer slows us down.
    maxAttempts: 1,
    // Newer SDKs add CRC32 trailers that many S3-compatible servers reject; send them only when required.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // socketTimeout is an idle timeout: a stalled server fails the request, a slow but moving
    // part upload does not. (This SDK's requestTimeout only logs a warning when it expires.)
    requestHandler: {
      connectionTimeout: timeouts?.connectMs ?? 30_000,
      socketTimeout: timeouts?.idleMs ?? 60_000,
    },
  });
}
