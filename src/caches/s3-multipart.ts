// A spooled NAR into one S3 object: one PutObject when it fits in a part, else a multipart upload
// whose part size comes from the NAR's size (part-plan.ts). Each part is read from the spool file
// at its offset and sent as its own request, so a part that fails is sent again alone, through the
// same retries and pacing as every request, and never the NAR from its start. A failed multipart
// upload is aborted, so no parts are left to be billed.

import { open } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { PartPlan } from './part-plan.js';

export interface ObjectTarget {
  client: S3Client;
  bucket: string;
  key: string;
  contentType: string;
  /** Sends one request (a fresh attempt each call) with retries and pacing; `what` names it in logs. */
  call<T>(what: string, request: () => Promise<T>): Promise<T>;
}

export interface SpooledFile {
  path: string;
  size: number;
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
      if (bytesRead === 0) throw new Error(`${path} ended at ${offset + filled} bytes, before the ${offset + length} expected`);
      filled += bytesRead;
    }
    return buffer;
  } finally {
    await handle.close();
  }
}

export async function putSpooledObject(target: ObjectTarget, file: SpooledFile, plan: PartPlan): Promise<{ parts: number }> {
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { client, bucket, key, contentType } = target;
  if (plan.partCount <= 1) {
    const body = await readRange(file.path, 0, file.size);
    await target.call(`PUT ${key} to`, () =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.length })),
    );
    return { parts: 1 };
  }
  return putMultipart(target, file, plan);
}

async function putMultipart(target: ObjectTarget, file: SpooledFile, plan: PartPlan): Promise<{ parts: number }> {
  const { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } =
    await import('@aws-sdk/client-s3');
  const { client, bucket, key, contentType } = target;
  const created = await target.call(`start a multipart upload of ${key} to`, () =>
    client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: contentType })),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`the server started a multipart upload of ${key} without an UploadId`);
  const eTags: string[] = [];
  let next = 0;
  let failed = false;
  const sendParts = async (): Promise<void> => {
    while (!failed && next < plan.partCount) {
      const index = next++;
      const offset = index * plan.partSize;
      const body = await readRange(file.path, offset, Math.min(plan.partSize, file.size - offset));
      const sent = await target.call(`PUT part ${index + 1} of ${plan.partCount} of ${key} to`, () =>
        client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: index + 1,
            Body: body,
            ContentLength: body.length,
          }),
        ),
      );
      if (!sent.ETag) throw new Error(`the server took part ${index + 1} of ${key} but sent no ETag`);
      eTags[index] = sent.ETag;
    }
  };
  try {
    // Every sender stops before the upload is aborted: a part still in flight could outlive the abort.
    const senders = await Promise.allSettled(
      Array.from({ length: Math.min(plan.partsInFlight, plan.partCount) }, () =>
        sendParts().catch((error: unknown) => {
          failed = true;
          throw error;
        }),
      ),
    );
    const refused = senders.find((sender) => sender.status === 'rejected');
    if (refused) throw refused.reason;
    await target.call(`complete the multipart upload of ${key} to`, () =>
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: eTags.map((eTag, index) => ({ PartNumber: index + 1, ETag: eTag })) },
        }),
      ),
    );
  } catch (error) {
    // Parts of an upload never completed are invisible but billed: abort it (s3rver cannot, hence the catch).
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw error;
  }
  return { parts: plan.partCount };
}
