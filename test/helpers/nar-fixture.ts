import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NarUpload } from '../../src/caches/cache.js';
import { encodeBase32 } from '../../src/nix/base32.js';
import { parseHash } from '../../src/nix/hash.js';
import { narInfoFingerprint, type NarInfo } from '../../src/nix/narinfo.js';
import { signFingerprint, type SigningKey } from '../../src/nix/signing.js';
import { nixDump, run } from './nix.js';

export interface NarFixture {
  storePath: string;
  nar: Buffer;
  upload: NarUpload;
  narInfo: NarInfo;
}

/**
 * What push would hand a backend for `storePath`, built independently of the push pipeline: the
 * NAR from `nix-store --dump` (compression none) spooled in `dir`, and a narinfo from
 * `nix-store -q`, signed with `key`.
 */
export async function uncompressedNarFixture(storePath: string, dir: string, key: SigningKey): Promise<NarFixture> {
  const nar = await nixDump(storePath);
  const narFile = join(dir, `${storePath.slice(storePath.lastIndexOf('/') + 1)}.nar`);
  await writeFile(narFile, nar);
  const narHash = parseHash((await run('nix-store', ['-q', '--hash', storePath])).trim());
  const narSize = Number((await run('nix-store', ['-q', '--size', storePath])).trim());
  const references = (await run('nix-store', ['-q', '--references', storePath])).split('\n').filter(Boolean);
  const fileHashBase32 = encodeBase32(narHash.digest);
  const upload: NarUpload = {
    narUrl: `nar/${fileHashBase32}.nar`,
    fileSize: nar.length,
    fileHashBase32,
    compression: 'none',
    localPath: narFile,
    open: () => createReadStream(narFile),
  };
  const unsigned: NarInfo = {
    storePath,
    url: upload.narUrl,
    compression: 'none',
    fileHash: narHash,
    fileSize: nar.length,
    narHash,
    narSize,
    references,
    sigs: [],
  };
  return { storePath, nar, upload, narInfo: { ...unsigned, sigs: [signFingerprint(key, narInfoFingerprint(unsigned))] } };
}
