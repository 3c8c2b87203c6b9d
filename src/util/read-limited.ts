import type { Readable } from 'node:stream';

/**
 * Reads a whole response body as text, but never more than `limit` bytes: a narinfo or an API
 * answer is small, and a server sending megabytes instead must not fill our memory. Each backend
 * says how its too-large and failed reads look to the user.
 */
export async function readLimited(
  body: Readable,
  limit: number,
  tooLarge: () => Error,
  readFailed: (error: unknown, bytesRead: number) => unknown = (error) => error,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) break;
      chunks.push(chunk);
    }
  } catch (error) {
    throw readFailed(error, size);
  }
  if (size > limit) {
    body.destroy();
    throw tooLarge();
  }
  return Buffer.concat(chunks).toString('utf8');
}
