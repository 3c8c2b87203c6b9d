// The uncompressed NAR stream a server that signs itself (attic) gets, checked on its own: the
// guarantees hold whatever the server does with the bytes, and without timing (no server here).
import { createHash } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Source from '../../../src/push/nar/source.js';
import type * as PathInfo from '../../../src/store/path-info.js';
import { buildWithNix, nixDump, run } from '../../helpers/nix.js';

// The built modules: the stream dumps on a reader thread, whose worker file exists only in dist/.
const { narSourceOf } = (await import(join(process.cwd(), 'dist/push/nar/source.js'))) as typeof Source;
const { queryPathInfo } = (await import(join(process.cwd(), 'dist/store/path-info.js'))) as typeof PathInfo;

async function readAll(source: AsyncIterable<Buffer>): Promise<{ bytes: Buffer[]; error: unknown }> {
  const bytes: Buffer[] = [];
  try {
    for await (const chunk of source) bytes.push(Buffer.from(chunk));
    return { bytes, error: undefined };
  } catch (error) {
    return { bytes, error };
  }
}

const digest = (chunks: Buffer[]): string => createHash('sha256').update(Buffer.concat(chunks)).digest('hex');

describe('the NAR stream for a server that signs (attic)', () => {
  const built: string[] = [];
  // Several chunks (a reader's chunk is 1 MiB), so holding back the last one is visible.
  const script = 'mkdir $out; echo original > $out/file; head -c 3000000 /dev/urandom > $out/big';

  afterAll(async () => {
    for (const path of built) await run('nix-store', ['--delete', path]).catch(() => undefined);
  });

  it('an intact path streams whole, byte for byte what nix-store --dump gives', async () => {
    const path = await buildWithNix('source-intact', script);
    built.push(path);
    const [info] = await queryPathInfo([path]);
    const { bytes, error } = await readAll(narSourceOf(info!, { omitDeriver: false }).open());
    expect(error).toBeUndefined();
    expect(bytes.length).toBeGreaterThan(1);
    expect(digest(bytes)).toBe(digest([await nixDump(path)]));
  });

  describe('a same-size tampered path', () => {
    let tampered: Awaited<ReturnType<typeof queryPathInfo>>[number];
    beforeAll(async () => {
      const path = await buildWithNix('source-tamper', script);
      built.push(path);
      [tampered] = await queryPathInfo([path]);
      await chmod(path, 0o755);
      await chmod(join(path, 'file'), 0o644);
      await writeFile(join(path, 'file'), 'ORIGINAL\n'); // the same size: only the NarHash tells
    });

    it('is refused by its NarHash: the stream fails, naming the path', async () => {
      const { error } = await readAll(narSourceOf(tampered!, { omitDeriver: false }).open());
      expect(String(error)).toContain(`${tampered!.path} does not match what Nix recorded (NarHash`);
    });

    it('never gives its last byte: what was yielded before the failure is short of the whole NAR', async () => {
      const { bytes, error } = await readAll(narSourceOf(tampered!, { omitDeriver: false }).open());
      expect(error).toBeDefined();
      const yielded = bytes.reduce((sum, chunk) => sum + chunk.length, 0);
      expect(yielded).toBeGreaterThan(0);
      expect(yielded).toBeLessThan(tampered!.narSize);
    });
  });
});
