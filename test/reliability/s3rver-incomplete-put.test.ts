import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discardIncompletePuts, startS3rver, type RunningS3rver } from '../helpers/s3rver.js';

/**
 * The crash tests rely on discardIncompletePuts to give s3rver S3's all-or-nothing PUT. This
 * shows why it is needed (s3rver keeps half a body) and that it removes only that.
 */
describe('s3rver and a client that dies mid-PUT', () => {
  let s3: RunningS3rver;
  beforeAll(async () => {
    s3 = await startS3rver();
  });
  afterAll(async () => s3.stop());

  async function put(key: string, body: Buffer, declaredLength: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const req = request(`${s3.httpUrl}/${key}`, { method: 'PUT', headers: { 'content-length': declaredLength } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => resolve());
      if (body.length < declaredLength) {
        req.write(body, () => setTimeout(() => req.destroy(), 200));
        req.on('close', resolve);
      } else {
        req.end(body);
      }
    });
  }

  it('keeps half an object under its name, which the helper then removes, leaving complete ones', async () => {
    await put('complete.narinfo', Buffer.from('StorePath: x\n'), 13);
    await put('half.nar', Buffer.alloc(64 * 1024, 1), 1024 * 1024);
    const objects = async (): Promise<string[]> =>
      (await readdir(s3.directory, { recursive: true }))
        .filter((name) => String(name).endsWith('._S3rver_object'))
        .map(String)
        .sort();
    expect((await objects()).some((name) => name.includes('half.nar'))).toBe(true);
    const discarded = await discardIncompletePuts(s3.directory);
    expect(discarded).toHaveLength(1);
    expect(discarded[0]).toContain('half.nar');
    const left = await objects();
    expect(left.some((name) => name.includes('half.nar'))).toBe(false);
    expect(left.some((name) => name.includes('complete.narinfo'))).toBe(true);
  });
});
