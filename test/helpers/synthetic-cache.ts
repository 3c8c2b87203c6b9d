import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { encodeBase32 } from '../../src/nix/base32.js';
import { formatNarInfo } from '../../src/nix/narinfo.js';
import { s3ClientFor, type RunningS3rver } from './s3rver.js';
import { seededRandom } from './seeded-random.js';

/**
 * A cache of `count` made-up store paths, written straight to where the server keeps files (a
 * directory, or s3rver through the S3 API): what gc and info tests and benches need in seconds,
 * where pushing ten thousand real paths would take many minutes. Each narinfo is valid and its
 * NAR (Compression: none) hashes to its FileHash; path i refers to up to three of the twenty
 * before it, so closures overlap as real ones do. No signatures: gc never reads them.
 */
export interface SyntheticCache {
  /** Store paths, in the order written (references first). */
  storePaths: string[];
  /** Pinned as `pins/keep.json`: the path in the middle, whose closure gc must keep. */
  pinned: string;
  /** Hash parts of the pinned path's closure. */
  pinnedClosure: Set<string>;
}

/** A sink for files of the cache: relative name and bytes. */
export type FileSink = (name: string, bytes: Buffer | string) => Promise<void>;

const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

export function directorySink(root: string): FileSink {
  return async (name, bytes) => {
    await mkdir(join(root, name, '..'), { recursive: true });
    await writeFile(join(root, name), bytes);
  };
}

export function s3Sink(s3: Pick<RunningS3rver, 'endpoint' | 'env' | 'bucket'>, prefix: string): { sink: FileSink; close(): void } {
  const client = s3ClientFor(s3);
  return {
    sink: async (name, bytes) => {
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: prefix + name, Body: bytes }));
    },
    close: () => client.destroy(),
  };
}

async function inBatches<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export async function writeSyntheticCache(
  sink: FileSink,
  count: number,
  seed: number,
  options: { narBytes?: number } = {},
): Promise<SyntheticCache> {
  const random = seededRandom(seed);
  const storePaths: string[] = [];
  const referencesOf = new Map<string, string[]>();
  const files: Array<[string, Buffer | string]> = [['nix-cache-info', 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n']];
  for (let index = 0; index < count; index++) {
    const hashPart = Array.from({ length: 32 }, () => ALPHABET[Math.floor(random() * 32)]).join('');
    const storePath = `/nix/store/${hashPart}-synthetic-${index}`;
    const references = new Set<string>();
    const wanted = index === 0 ? 0 : Math.floor(random() * 4);
    for (let i = 0; i < wanted; i++) references.add(storePaths[Math.max(0, index - 1 - Math.floor(random() * 20))]!);
    const nar = Buffer.alloc(options.narBytes ?? 256);
    for (let i = 0; i < nar.length; i += 4) nar.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
    nar.write(storePath);
    const digest = createHash('sha256').update(nar).digest();
    const fileHash = encodeBase32(digest);
    const url = `nar/${fileHash}.nar`;
    files.push([url, nar]);
    files.push([
      `${hashPart}.narinfo`,
      formatNarInfo({
        storePath,
        url,
        compression: 'none',
        fileHash: { algorithm: 'sha256', digest },
        fileSize: nar.length,
        narHash: { algorithm: 'sha256', digest },
        narSize: nar.length,
        references: [...references].sort(),
        sigs: [],
      }),
    ]);
    storePaths.push(storePath);
    referencesOf.set(storePath, [...references]);
  }
  const pinned = storePaths[Math.floor(count / 2)]!;
  files.push([
    'pins/keep.json',
    JSON.stringify({
      format: 'cachix-any-pin/1',
      name: 'keep',
      keep: { forever: true },
      revisions: [{ storePath: pinned, pinnedAt: new Date().toISOString() }],
    }),
  ]);
  // NARs before narinfos, as a push writes them.
  await inBatches(
    files.filter(([name]) => !name.endsWith('.narinfo')),
    32,
    ([name, bytes]) => sink(name, bytes),
  );
  await inBatches(
    files.filter(([name]) => name.endsWith('.narinfo')),
    32,
    ([name, bytes]) => sink(name, bytes),
  );
  return { storePaths, pinned, pinnedClosure: closureHashes(pinned, referencesOf) };
}

function closureHashes(root: string, referencesOf: Map<string, string[]>): Set<string> {
  const closure = new Set<string>();
  const stack = [root];
  while (stack.length > 0) {
    const path = stack.pop()!;
    const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    if (closure.has(hash)) continue;
    closure.add(hash);
    stack.push(...(referencesOf.get(path) ?? []));
  }
  return closure;
}
