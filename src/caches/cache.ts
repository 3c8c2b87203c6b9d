import type { Readable } from 'node:stream';
import type { NarInfo } from '../nix/narinfo.js';

/** What `nix-cache-info` says, plus what a cachix API cache adds. */
export interface CacheInfo {
  storeDir: string;
  wantMassQuery: boolean;
  priority: number;
  /** Public keys the server publishes for the cache (cachix API); empty for plain binary caches. */
  publicKeys: string[];
  /** The URL Nix should use as a substituter for this cache. */
  substituterUrl: string;
  isPublic: boolean;
  /** Compression the server prefers (cachix API), if it says. */
  preferredCompression?: 'zstd' | 'xz' | undefined;
}

/**
 * A NAR ready to upload: `open()` gives a fresh stream of the compressed bytes each time it is
 * called, so a failed upload is re-read and re-sent from the start.
 */
export interface NarUpload {
  /** `nar/<FileHash base32>.nar<ext>`, relative to the cache root. */
  narUrl: string;
  fileSize: number;
  fileHashBase32: string;
  compression: string;
  /** The compressed NAR spooled on local disk; `open()` reads it. A file cache renames it in place. */
  localPath: string;
  open(): Readable;
}

/**
 * The one interface the push pipeline sees. Every implementation writes a NAR completely before
 * the narinfo that points at it, and never leaves a partial file under a final name.
 */
export interface BinaryCache {
  /** A short description for logs, never containing credentials. */
  readonly description: string;
  /**
   * Where the pipeline should spool compressed NARs for this cache. A file cache names a folder
   * inside itself, so that storing a NAR is a rename, not a copy. Default: the OS temp dir.
   */
  readonly spoolDirectory?: string;
  info(): Promise<CacheInfo>;
  /** Of these store path hash parts, the ones the cache has no narinfo for. */
  missing(hashParts: readonly string[]): Promise<Set<string>>;
  /**
   * Stores one path. Plain caches upload the NAR, then the narinfo; the cachix API uploads the
   * NAR and completes it with the narinfo fields in one call. The narinfo is already signed.
   */
  upload(nar: NarUpload, narInfo: NarInfo): Promise<void>;
  /** Reads a narinfo's text back, or undefined when the cache has none (for `verify`). */
  getNarInfo(hashPart: string): Promise<string | undefined>;
  /** Reads a file back from the cache (for `verify`): a stream, or undefined when missing. */
  getFile(relativeUrl: string): Promise<Readable | undefined>;
  /** Writes nix-cache-info where the server takes writes (create). */
  writeCacheInfo?(text: string): Promise<void>;
  close?(): Promise<void>;
}

/** Nix 2.8 has no batch lookup, so `missing` asks one narinfo at a time, this many at once. */
export const LOOKUP_CONCURRENCY = 32;
