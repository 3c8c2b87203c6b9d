// A cache on an attic server: the server compresses, chunks, deduplicates and signs what we send.
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { MAX_NARINFO_BYTES } from '../nix/narinfo.js';
import { DEFAULT_STORE_DIR, hashPartOf } from '../nix/store-path.js';
import { registerSecret } from '../redact.js';
import type { AtticCacheConfig, UploadPathNarInfo } from './attic-api.js';
import { AtticClient, AtticRefusal } from './attic-client.js';
import type { BinaryCache, CacheInfo, NarSource, NarUpload, StreamedUpload, CacheCapabilities } from './cache.js';
import { refuseOverPlainHttp } from './credentials.js';
import type { RetryOptions } from './retry.js';

/*
 * The URL form: `attic+https://HOST[:PORT][/PREFIX]/CACHE` (or attic+http). attic's own client
 * names a server by its endpoint (https://HOST/) and a cache as `server:cache`; the substituter
 * it serves is `<endpoint><cache>`, so our URL is the substituter URL with `attic+` in front.
 */
export const ATTIC_SCHEMES = ['attic+http:', 'attic+https:'];

/** attic/src/cache.rs CACHE_NAME_REGEX. */
const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9\-_+]{0,49}$/;
/** Store hashes per get-missing-paths call, as attic's client batches them in a push session. */
export const MISSING_BATCH_SIZE = 1000;
/** attic's `cache create` default: paths cache.nixos.org serves are not pushed. */
const DEFAULT_UPSTREAM_KEY_NAMES = ['cache.nixos.org-1'];

export interface AtticLocation {
  /** The API endpoint, ending in `/`. */
  endpoint: string;
  cache: string;
  /** host[:port]: the key of a per-server token in the config. */
  server: string;
}

export function parseAtticUrl(url: URL): AtticLocation {
  const scheme = url.protocol.slice('attic+'.length);
  const segments = url.pathname.split('/').filter(Boolean);
  const cache = decodeURIComponent(segments.pop() ?? '');
  if (!CACHE_NAME.test(cache) || url.search || url.hash || url.username || url.password) {
    throw new UserError(
      `'${url.href}' does not name an attic cache`,
      'write it as attic+https://HOST/CACHE (the substituter URL attic prints, with attic+ in front); tokens go in the config, not the URL',
    );
  }
  const prefix = segments.map((segment) => `${segment}/`).join('');
  return { endpoint: `${scheme}//${url.host}/${prefix}`, cache, server: url.host.toLowerCase() };
}

/**
 * This server's own token in the config (`[servers."HOST:PORT"]`, else `[servers."HOST"]`, as
 * `authtoken --server HOST` stores it), else CACHIX_AUTH_TOKEN. Never another server's token, and
 * never the global `authtoken` one: that is a cachix.org credential, for the cachix API host only.
 */
export function atticToken(location: AtticLocation, context: Context, config: Config): string | undefined {
  const servers = config.servers ?? {};
  const hostname = new URL(location.endpoint).hostname.toLowerCase();
  const own = servers[location.server]?.token || servers[hostname]?.token;
  const token = own || context.env.CACHIX_AUTH_TOKEN || undefined;
  registerSecret(token);
  return token ? refuseOverPlainHttp(token, new URL(location.endpoint), context) : undefined;
}

function storeBaseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function uploadInfoOf(cache: string, nar: NarSource): UploadPathNarInfo {
  return {
    cache,
    store_path_hash: hashPartOf(nar.storePath),
    store_path: nar.storePath,
    references: nar.references.map(storeBaseName),
    system: null,
    deriver: nar.deriver ? storeBaseName(nar.deriver) : null,
    sigs: nar.sigs,
    ca: nar.ca ?? null,
    nar_hash: `sha256:${Buffer.from(nar.narHash.digest).toString('hex')}`,
    nar_size: nar.narSize,
  };
}

class AtticCache implements BinaryCache {
  readonly description: string;
  readonly capabilities: CacheCapabilities = {
    signs: 'server',
    substituter: 'server',
    staging: { kind: 'temporary' },
    local: false,
    pins: 'none',
    serverKeepsGarbage:
      "attic collects garbage on its server: set the cache's retention period (attic cache configure) and run its garbage collector",
  };
  private readonly client: AtticClient;
  private config: Promise<AtticCacheConfig> | undefined;

  constructor(
    private readonly location: AtticLocation,
    token: string | undefined,
    retry?: RetryOptions,
  ) {
    this.client = new AtticClient({ endpoint: location.endpoint, cache: location.cache, token, retry });
    this.description = `attic cache ${location.cache} (${location.endpoint})`;
  }

  /** The cache's config, asked once; the API moves to the endpoint it names, as attic's client does. */
  private cacheConfig(): Promise<AtticCacheConfig> {
    this.config ??= this.client.getCacheConfig().then((config) => {
      if (typeof config.api_endpoint === 'string') this.client.useEndpoint(config.api_endpoint);
      return config;
    });
    this.config.catch(() => (this.config = undefined));
    return this.config;
  }

  async info(): Promise<CacheInfo> {
    const config = await this.cacheConfig();
    return {
      storeDir: config.store_dir ?? DEFAULT_STORE_DIR,
      wantMassQuery: true,
      priority: config.priority ?? 41,
      publicKeys: config.public_key ? [config.public_key] : [],
      substituterUrl: config.substituter_endpoint ?? `${this.location.endpoint}${this.location.cache}`,
      isPublic: config.is_public ?? false,
      upstreamCacheKeyNames: config.upstream_cache_key_names ?? [],
    };
  }

  async missing(hashParts: readonly string[]): Promise<Set<string>> {
    await this.cacheConfig();
    const unique = [...new Set(hashParts)];
    const missing = new Set<string>();
    for (let start = 0; start < unique.length; start += MISSING_BATCH_SIZE) {
      for (const hash of await this.client.getMissingPaths(unique.slice(start, start + MISSING_BATCH_SIZE))) missing.add(hash);
    }
    return missing;
  }

  upload(_nar: NarUpload): Promise<void> {
    // The pipeline sees uploadNarSource and never spools for attic; this would be a bug of ours.
    return Promise.reject(new Error('an attic cache takes uncompressed NARs through uploadNarSource'));
  }

  async uploadNarSource(nar: NarSource): Promise<StreamedUpload> {
    await this.cacheConfig();
    const { result, sentBytes } = await this.client.uploadPath(uploadInfoOf(this.location.cache, nar), () => nar.open());
    return { sentBytes, deduplicated: result.kind === 'Deduplicated' };
  }

  async createOnServer(settings: { storeDir: string; priority: number; isPublic: boolean }): Promise<'existed' | 'created'> {
    try {
      await this.cacheConfig();
      return 'existed';
    } catch (error) {
      // attic answers 401 both for "no such cache" and "not yours": creating tells them apart.
      if (!(error instanceof AtticRefusal) || ![401, 403, 404].includes(error.status)) throw error;
      const created = await this.client
        .createCache({
          keypair: 'Generate',
          is_public: settings.isPublic,
          store_dir: settings.storeDir,
          priority: settings.priority,
          upstream_cache_key_names: DEFAULT_UPSTREAM_KEY_NAMES,
        })
        .catch((createError: unknown) => {
          throw createError instanceof UserError
            ? new UserError(
                `${error.message}, and the token may not create it (${createError.message})`,
                'create it on the server (`attic cache create CACHE`), or use a token allowed to create caches',
              )
            : createError;
        });
      await this.cacheConfig();
      return created ? 'created' : 'existed';
    }
  }

  async getNarInfo(hashPart: string): Promise<string | undefined> {
    const body = await this.getFile(`${hashPart}.narinfo`);
    return body ? this.client.readText(body, MAX_NARINFO_BYTES) : undefined;
  }

  async getFile(relativeUrl: string): Promise<Readable | undefined> {
    const { substituterUrl } = await this.info();
    return this.client.getFromSubstituter(substituterUrl, relativeUrl);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

export function createAtticCache(url: URL, context: Context, config: Config, retry?: RetryOptions): BinaryCache {
  const location = parseAtticUrl(url);
  return new AtticCache(location, atticToken(location, context, config), retry);
}
