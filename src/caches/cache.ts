import type { Readable } from 'node:stream';
import type { NarInfo } from '../nix/narinfo.js';
import type { PinCreate } from './cachix-api-types.js';
import type { PathInfo } from '../store/path-info.js';

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
  /**
   * Key names of upstream caches the server names (attic's `upstream_cache_key_names`): a path
   * signed by one of them is served upstream and need not be pushed.
   */
  upstreamCacheKeyNames?: string[] | undefined;
}

/**
 * One store path's NAR as Nix dumps it, uncompressed, for a server that compresses and signs
 * itself (attic). `open()` dumps the path from the store afresh each call, so a retried upload
 * re-reads it; the stream fails before its last byte when the NAR does not match narHash and
 * narSize (the path changed after it was built), so a server never receives a whole wrong NAR.
 */
export interface NarSource extends Omit<PathInfo, 'path'> {
  storePath: string;
  open(): AsyncIterable<Buffer>;
}

export interface StreamedUpload {
  /** Bytes sent in the request that succeeded (NAR, plus any metadata sent in the body). */
  sentBytes: number;
  /** The server already held this NAR and kept a reference to it. */
  deduplicated: boolean;
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
  /** The compressed NAR staged on local disk; `open()` reads it. A file cache renames it in place. */
  localPath: string;
  open(): Readable;
}

/**
 * Where a cache wants compressed NARs staged before `upload()`, as plain data a worker thread can
 * carry: in the OS temporary folder, or (a cache in a local folder) in the cache's own `nar/`
 * folder, from where a checked NAR is placed under its final name by a rename
 * (`placeStagedNar`), so storing it is never a copy.
 */
export type NarStaging = { kind: 'temporary' } | { kind: 'in-cache'; directory: string; root: string };

/**
 * What a cache is and can do, declared by the cache itself: callers ask this, never guess from a
 * URL or description prefix or from which optional member exists.
 */
export interface CacheCapabilities {
  /**
   * Who signs narinfos: 'client' (we do, with the cache's key), 'client-or-server' (the cachix
   * API: we do when we hold a key, the service does when we push with a token alone), 'server'
   * (attic: the server compresses and signs, and gets the NAR as dumped through uploadNarSource).
   */
  signs: 'client' | 'client-or-server' | 'server';
  staging: NarStaging;
  /** Answers lookups from this machine's disk, sooner than Nix answers a query. */
  local: boolean;
  /**
   * Where Nix substitutes from: the cache's own URL, or a URL only its server can tell
   * (info().substituterUrl: the cachix API, attic), so without the server there is none to name.
   */
  substituter: 'cache-url' | 'server';
  /** Where pins live: files in the cache (`pins/`), or the cachix service's own. */
  pins: 'files' | 'service' | 'none';
  /**
   * Set when the server collects its own garbage and a client can neither list nor delete: what
   * the user can do instead. `list`, `deleteFile` and `putFile` are then absent.
   */
  serverKeepsGarbage?: string;
}

/**
 * A plain binary cache on a server that stores files as it is given them (HTTP with PUT, S3): we
 * sign, Nix substitutes from the cache URL, NARs are staged in the OS temporary folder, and pins
 * are files in the cache.
 */
export const FILE_SERVER_CAPABILITIES: Readonly<CacheCapabilities> = Object.freeze({
  signs: 'client',
  substituter: 'cache-url',
  staging: Object.freeze({ kind: 'temporary' }),
  local: false,
  pins: 'files',
});

/** What a listing of the cache root says about `<hash part><suffix>` files. */
export interface ListedAbsence {
  /** Hash parts whose file the listing showed absent. */
  absent: Set<string>;
  /** Hash parts no listing answered: ask for each file itself. */
  undecided: string[];
}

/**
 * The one interface the push pipeline sees. Every implementation writes a NAR completely before
 * the narinfo that points at it, and never leaves a partial file under a final name.
 */
export interface BinaryCache {
  /** A short description for logs, never containing credentials. */
  readonly description: string;
  readonly capabilities: CacheCapabilities;
  info(): Promise<CacheInfo>;
  /** Of these store path hash parts, the ones the cache has no narinfo for. */
  missing(hashParts: readonly string[]): Promise<Set<string>>;
  /**
   * Stores one path. Plain caches upload the NAR, then the narinfo; the cachix API uploads the
   * NAR and completes it with the narinfo fields in one call. The narinfo is already signed.
   */
  upload(nar: NarUpload, narInfo: NarInfo): Promise<void>;
  /**
   * Present on servers that compress, chunk and sign themselves (capabilities.signs 'server'):
   * the pipeline hands them the NAR as dumped instead of a compressed spool.
   */
  uploadNarSource?(nar: NarSource): Promise<StreamedUpload>;
  /**
   * For `create` on a server that keeps its own caches: registers the cache when it exists, or
   * asks the server to create it.
   */
  createOnServer?(settings: { storeDir: string; priority: number; isPublic: boolean }): Promise<'existed' | 'created'>;
  /** Reads a narinfo's text back, or undefined when the cache has none (for `verify`). */
  getNarInfo(hashPart: string): Promise<string | undefined>;
  /** Reads a file back from the cache (for `verify`): a stream, or undefined when missing. */
  getFile(relativeUrl: string): Promise<Readable | undefined>;
  /**
   * Present on caches in a local directory: the file's path on this machine, or undefined when
   * missing, so a worker thread can read it itself rather than through a stream here.
   */
  localFile?(relativeUrl: string): Promise<string | undefined>;
  /** Writes nix-cache-info where the server takes writes (create). */
  writeCacheInfo?(text: string): Promise<void>;
  close?(): Promise<void>;

  // Optional capabilities for `info`, `pin`, `gc` and `delete` (maintain/): a server that lacks
  // one makes those commands say so in one line before anything is changed.

  /**
   * The files directly in `folder` ('' for the cache root, or 'nar/', 'pins/'), not recursing.
   * A folder that does not exist lists as empty. Throws a UserError when the server cannot list.
   */
  list?(folder: string): Promise<ListedFile[]>;
  /**
   * Removes one file; one that is already gone is not an error (another gc may have won). True
   * when this call removed it, so two gcs at once never both count one deletion.
   */
  deleteFile?(relativeUrl: string): Promise<boolean>;
  /**
   * Writes a small file whole: readers see the old or the new content, never a part. A
   * `contentEncoding` (br, xz, zstd) is sent as Content-Encoding, for Nix's HTTP client to decode.
   */
  putFile?(relativeUrl: string, body: string | Uint8Array, contentType: string, contentEncoding?: string): Promise<void>;
  /**
   * A cache whose service keeps pins itself (the cachix API): `pin` asks it, and pins are not
   * written as files into the cache.
   */
  createPin?(pin: PinCreate): Promise<void>;
  /**
   * Present on servers that can list their root (HTTP with PROPFIND or a JSON index, S3): of these
   * hash parts, those with no `<hash part><suffix>` file, from one listing (or a few pages) when
   * there are enough of them for a listing to cost less than asking for each file; whatever the
   * listing did not answer is left undecided, never guessed.
   */
  listedAbsent?(hashParts: readonly string[], suffix: string): Promise<ListedAbsence>;
}

/** One file as a listing shows it. */
export interface ListedFile {
  /** Relative to the cache root: `<hash>.narinfo`, `nar/<filehash>.nar.zst`, `pins/NAME.json`. */
  name: string;
  size: number;
  modified: Date;
}

/** Nix 2.8 has no batch lookup, so `missing` asks one narinfo at a time, this many at once. */
export const LOOKUP_CONCURRENCY = 32;
