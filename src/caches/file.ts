import { createReadStream, statSync } from 'node:fs';
import { access, copyFile, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fsErrorToUser, UserError } from '../errors.js';
import { temporaryName } from '../util/temp-name.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { readSmallFileSync } from '../util/read-small-file.js';
import { formatNarInfo, MAX_NARINFO_BYTES, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import type { BinaryCache, CacheCapabilities, CacheInfo, ListedFile, NarUpload } from './cache.js';
import { placeNarInFileCache } from './file-nar.js';
import { deleteCacheFile, listDirectory, putCacheFile } from './file-listing.js';
import { shellWord } from '../util/shell-word.js';
import { parseNixCacheInfo } from '../nix/cache-info.js';

/** Above this many queries, one readdir of the cache root beats a stat per path. */
const READDIR_THRESHOLD = 256;

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function fileErrorToUser(error: unknown, root: string): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR')
    throw new UserError(
      `the cache at ${root} changed under us: a file being stored vanished (${code}), as when the cache or its nar/ folder is removed or moved while pushing`,
      'check what removed it; if the cache is gone, create it again (cachix create NAME --url …) and push again',
    );
  throw fsErrorToUser(error, {
    path: root,
    name: `the cache at ${root}`,
    hints: {
      full: 'free some space and push again; nothing half-written was left in the cache',
      denied: 'check its owner and mode, or push as a user who can write it',
    },
  });
}

/** A binary cache in a local directory, laid out exactly as Nix's file:// store. */
export class FileCache implements BinaryCache {
  readonly description: string;
  readonly capabilities: CacheCapabilities;
  /** NARs are staged in the cache's own nar/ folder, so that storing one is a rename, not a copy. */
  private readonly narDirectory: string;

  constructor(readonly root: string) {
    this.description = pathToFileURL(root).href;
    this.narDirectory = join(root, 'nar');
    this.capabilities = {
      signs: 'client',
      substituter: 'cache-url',
      staging: { kind: 'in-cache', directory: this.narDirectory, root },
      local: true,
      pins: 'files',
    };
  }

  static fromUrl(url: URL): FileCache {
    return new FileCache(fileURLToPath(url));
  }

  async info(): Promise<CacheInfo> {
    let text: string;
    try {
      text = await readFile(join(this.root, 'nix-cache-info'), 'utf8');
    } catch (error) {
      if (isMissing(error))
        throw new UserError(
          `${this.root} is not a binary cache (no nix-cache-info)`,
          'create it with: cachix create NAME --url ' + shellWord(this.description),
        );
      throw error;
    }
    const parsed = parseNixCacheInfo(text);
    return { ...parsed, publicKeys: [], substituterUrl: this.description, isPublic: true };
  }

  async missing(hashParts: readonly string[]): Promise<Set<string>> {
    if (hashParts.length > READDIR_THRESHOLD) {
      let names: string[];
      try {
        names = await readdir(this.root);
      } catch (error) {
        if (isMissing(error)) return new Set(hashParts);
        throw error;
      }
      // Only the closure's hash parts are kept in a set: the cache may name millions of files.
      const missing = new Set(hashParts);
      for (const name of names) if (name.endsWith('.narinfo')) missing.delete(name.slice(0, -'.narinfo'.length));
      return missing;
    }
    const results = await Promise.all(
      hashParts.map((hash) =>
        access(join(this.root, `${hash}.narinfo`)).then(
          () => undefined,
          () => hash,
        ),
      ),
    );
    return new Set(results.filter((hash): hash is string => hash !== undefined));
  }

  async upload(nar: NarUpload, narInfo: NarInfo): Promise<void> {
    const narPath = join(this.root, nar.narUrl);
    try {
      if (dirname(narPath) !== this.narDirectory) await mkdir(dirname(narPath), { recursive: true });
      if (dirname(nar.localPath) === dirname(narPath)) {
        placeNarInFileCache(this.root, nar.localPath, nar.narUrl);
      } else {
        const temporary = `${narPath}${temporaryName()}`;
        try {
          await copyFile(nar.localPath, temporary);
          await rename(temporary, narPath);
        } catch (error) {
          // A half-copied NAR under a temporary name is still litter nobody else will remove.
          await unlink(temporary).catch(() => undefined);
          throw error;
        }
      }
      // Only now, with every byte of the NAR under its final name, may the narinfo appear.
      writeFileAtomicallySync(join(this.root, `${hashPartOf(narInfo.storePath)}.narinfo`), formatNarInfo(narInfo));
    } catch (error) {
      fileErrorToUser(error, this.root);
    }
  }

  // Read on this thread (see readSmallFileSync): a copy or verify of ten thousand paths reads
  // ten thousand narinfos of a few hundred bytes each.
  async getNarInfo(hashPart: string): Promise<string | undefined> {
    let bytes: Buffer | undefined;
    try {
      bytes = readSmallFileSync(join(this.root, `${hashPart}.narinfo`), MAX_NARINFO_BYTES);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (!bytes) throw new Error(`${hashPart}.narinfo is larger than any real narinfo (${MAX_NARINFO_BYTES} bytes)`);
    return bytes.toString('utf8');
  }

  async getFile(relativeUrl: string): Promise<Readable | undefined> {
    const path = join(this.root, relativeUrl);
    if (!path.startsWith(this.root)) return undefined;
    try {
      await access(path);
    } catch {
      return undefined;
    }
    return createReadStream(path);
  }

  async localFile(relativeUrl: string): Promise<string | undefined> {
    const path = join(this.root, relativeUrl);
    if (!path.startsWith(this.root)) return undefined;
    // One stat on this thread: through the thread pool it cost several times more, once per NAR.
    try {
      return statSync(path).isFile() ? path : undefined;
    } catch {
      return undefined;
    }
  }

  async writeCacheInfo(text: string): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      await mkdir(this.narDirectory, { recursive: true });
      writeFileAtomicallySync(join(this.root, 'nix-cache-info'), text);
    } catch (error) {
      fileErrorToUser(error, this.root);
    }
  }

  list(folder: string): Promise<ListedFile[]> {
    return listDirectory(this.root, folder);
  }

  deleteFile(relativeUrl: string): Promise<boolean> {
    return deleteCacheFile(this.root, relativeUrl);
  }

  // Nix reads a file:// cache's logs and listings raw: no encoding applies.
  putFile(relativeUrl: string, body: string | Uint8Array): Promise<void> {
    return putCacheFile(this.root, relativeUrl, body);
  }
}
