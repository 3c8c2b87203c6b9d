import { constants } from 'node:fs';
import { lstat, mkdir, open, symlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseNar } from '../../src/nix/nar/parse.js';

/**
 * NAR stream -> a new tree at `target` (the NAR's root becomes `target` itself, as with
 * `nix-store --restore`). `target` must not exist yet.
 *
 * Nothing is written outside `target`: the parser already refuses names that are empty, `.`,
 * `..` or contain `/`; on top of that every entry must sit in a directory this restore created,
 * and every file and symlink is created exclusively (O_EXCL, O_NOFOLLOW), so no pre-existing or
 * restored symlink can redirect a write.
 */

const SLASH = Buffer.from('/');
// Exclusive create: never overwrite, never follow a symlink placed where the file should go.
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function parentOf(rawPath: Buffer): string {
  const slash = rawPath.lastIndexOf(0x2f);
  return slash < 0 ? '' : rawPath.subarray(0, slash).toString('latin1');
}

async function requireAbsent(target: string): Promise<void> {
  const existing = await lstat(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing) throw new Error(`${target} already exists; a NAR is restored into a new path only`);
}

export async function restoreNar(source: AsyncIterable<Uint8Array>, targetDir: string): Promise<void> {
  const target = resolve(targetDir);
  await requireAbsent(target);
  const targetBytes = Buffer.from(target);
  // Directories created so far, by raw relative path (latin1 keeps every byte distinct).
  const createdDirectories = new Set<string>();

  for await (const entry of parseNar(source)) {
    const isRoot = entry.rawPath.length === 0;
    if (!isRoot && !createdDirectories.has(parentOf(entry.rawPath))) {
      throw new Error(`NAR entry '${entry.path}' is not inside a directory restored from the same NAR; refusing to write it`);
    }
    const fullPath = isRoot ? targetBytes : Buffer.concat([targetBytes, SLASH, entry.rawPath]);
    switch (entry.type) {
      case 'directory':
        await mkdir(fullPath);
        createdDirectories.add(entry.rawPath.toString('latin1'));
        break;
      case 'symlink':
        await symlink(entry.rawTarget, fullPath);
        break;
      case 'regular': {
        // Nix's dump looks only at the owner's execute bit; 0755/0644 is what nix-store --restore makes.
        const file = await open(fullPath, CREATE_FLAGS, entry.executable ? 0o755 : 0o644);
        try {
          for await (const piece of entry.contents) {
            let written = 0;
            while (written < piece.length) {
              written += (await file.write(piece, written, piece.length - written)).bytesWritten;
            }
          }
        } finally {
          await file.close();
        }
        break;
      }
    }
  }
}
