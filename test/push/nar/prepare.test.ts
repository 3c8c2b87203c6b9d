// prepareNar itself: the observer seam sees the NAR as Nix dumps it, once, for a small NAR (built
// in memory) and a large one (streamed from a reader thread).
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type * as Prepare from '../../../src/push/nar/prepare.js';
import type * as PathInfo from '../../../src/store/path-info.js';
import { buildWithNix, nixDump, run } from '../../helpers/nix.js';

// The built modules: a large NAR is read on a reader thread, whose worker file exists only in dist/.
const { prepareNar } = (await import(join(process.cwd(), 'dist/push/nar/prepare.js'))) as typeof Prepare;
const { queryPathInfo } = (await import(join(process.cwd(), 'dist/store/path-info.js'))) as typeof PathInfo;

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('prepareNar', () => {
  const built: string[] = [];
  afterAll(async () => {
    for (const path of built) await run('nix-store', ['--delete', path]).catch(() => undefined);
  });

  it.each([
    ['a small NAR, built in memory', 'mkdir $out; echo small > $out/file'],
    ['a large NAR, streamed', 'mkdir $out; head -c 3000000 /dev/urandom > $out/big'],
  ])('%s: the observer sees every byte of the NAR once, in order; the narinfo is unsigned', async (_what, script) => {
    const path = await buildWithNix('prepare-observed', script);
    built.push(path);
    const [info] = await queryPathInfo([path]);
    const seen: Buffer[] = [];
    const prepared = await prepareNar(
      info!,
      { compression: 'zstd', zstdWorkers: 1, omitDeriver: false, observeNar: (chunk) => seen.push(Buffer.from(chunk)) },
      { staging: { kind: 'temporary' }, place: false },
    );
    try {
      expect(sha256(Buffer.concat(seen))).toBe(sha256(await nixDump(path)));
      expect(prepared!.placed).toBe(false);
      expect(prepared!.narInfo.sigs).toEqual([]);
      expect(prepared!.narInfo.fileSize).toBe(prepared!.fileSize);
    } finally {
      await rm(prepared!.localPath, { force: true });
    }
  });
});
