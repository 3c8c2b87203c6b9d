// The JSON shapes of the cachix.org HTTP API, as the cachix client (github.com/cachix/cachix)
// sends and reads them: cachix-api/src/Cachix/Types/{BinaryCache,NarInfoCreate,MultipartUpload,
// PinCreate}.hs with aeson's generic encoding (field names as written there).

/** `GET /api/v1/cache/:name` (Cachix.Types.BinaryCache). */
export interface BinaryCacheJson {
  name: string;
  /** Where Nix substitutes from, e.g. https://NAME.cachix.org. */
  uri: string;
  isPublic: boolean;
  publicSigningKeys: string[];
  githubUsername: string;
  permission: 'Read' | 'Write' | 'Admin';
  preferredCompressionMethod?: 'ZSTD' | 'XZ';
}

/**
 * Cachix.Types.NarInfoCreate. The cachix client sends NarHash as `sha256:<nix base32>`, FileHash
 * as bare base16 sha256, References and Deriver as base names (Deriver "unknown-deriver" when
 * there is none), and Sig as the bare base64 ed25519 signature: the server adds the key name.
 */
export interface NarInfoCreate {
  cStoreHash: string;
  cStoreSuffix: string;
  cNarHash: string;
  cNarSize: number;
  cFileHash: string;
  cFileSize: number;
  cReferences: string[];
  cDeriver: string;
  cSig: string | null;
}

/** Cachix.Types.MultipartUpload.CompletedPart: the ETag the object store gave for the part. */
export interface CompletedPart {
  partNumber: number;
  eTag: string;
}

/** The object store refused a presigned URL because its time ran out (S3: 403 "Request has expired"). */
export class PresignedUrlExpired extends Error {
  constructor(url: URL) {
    super(`the presigned URL for a part at ${url.origin}${url.pathname} expired before the part was sent`);
    this.name = 'PresignedUrlExpired';
  }
}

/**
 * Cachix.Types.PinCreate with aeson's generic encoding: `keep` is null (the cache's default) or
 * a tagged object; Forever, a constructor without fields, has no `contents`.
 */
export interface PinCreate {
  name: string;
  storePath: string;
  artifacts: string[];
  keep: null | { tag: 'Days' | 'Revisions'; contents: number } | { tag: 'Forever' };
}

/** The `compression` query parameter: Cachix.Types.BinaryCache.CompressionMethod's ToHttpApiData. */
export type CompressionParam = 'zst' | 'xz';
