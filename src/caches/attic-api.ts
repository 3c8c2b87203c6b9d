// The JSON attic's API speaks, with serde's field names (attic/src/api/v1/*.rs).

/** `GET /_api/v1/cache-config/{cache}` (attic::api::v1::cache_config::CacheConfig); all optional. */
export interface AtticCacheConfig {
  substituter_endpoint?: string;
  api_endpoint?: string;
  public_key?: string;
  is_public?: boolean;
  store_dir?: string;
  priority?: number;
  upstream_cache_key_names?: string[];
}

/** attic::api::v1::upload_path::UploadPathNarInfo; nar_hash as `sha256:<hex>`, references as base names. */
export interface UploadPathNarInfo {
  cache: string;
  store_path_hash: string;
  store_path: string;
  references: string[];
  system: string | null;
  deriver: string | null;
  sigs: string[];
  ca: string | null;
  nar_hash: string;
  nar_size: number;
}

/** attic::api::v1::cache_config::CreateCacheRequest. */
export interface CreateCacheRequest {
  keypair: 'Generate';
  is_public: boolean;
  store_dir: string;
  priority: number;
  upstream_cache_key_names: string[];
}

export interface UploadPathResult {
  kind?: string;
  file_size?: number | null;
  frac_deduplicated?: number | null;
}

/** client/src/api/mod.rs NAR_INFO_PREAMBLE_THRESHOLD: a JSON this large goes in the body. */
export const NAR_INFO_PREAMBLE_THRESHOLD = 4 * 1024;
