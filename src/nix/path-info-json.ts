import { UserError } from '../errors.js';
import { formatHashBase32, parseHash, type Hash } from './hash.js';
import { DEFAULT_STORE_DIR } from './store-path.js';

// `nix path-info --json` as every Nix since 2.8 prints it, read into one PathInfo shape. Pure:
// running Nix is store/path-info.ts's job.

/** What Nix's database records for one valid store path. */
export interface PathInfo {
  path: string;
  narHash: Hash;
  narSize: number;
  /** Full store paths, possibly including the path itself. */
  references: string[];
  deriver?: string | undefined;
  sigs: string[];
  ca?: string | undefined;
}

/** A hash as Nix prints it: a string, or (json-format 2 as first released) `{algorithm, format, hash}`. */
type RawHash = string | { algorithm?: string; format?: string; hash?: string };

interface RawPathInfo {
  path?: string;
  narHash?: RawHash;
  narSize?: number;
  references?: string[];
  deriver?: string | null;
  /** Strings `<key>:<base64>`; in store-object-info v3, `{keyName, sig}` objects. */
  signatures?: Array<string | { keyName?: string; sig?: string }>;
  /** A string `fixed:r:sha256:…`; since json-format 2, `{method, hash}`. */
  ca?: string | { method?: string; hash?: RawHash } | null;
  storeDir?: string;
  valid?: boolean;
}

function fullPath(reference: string, storeDir: string): string {
  return reference.startsWith('/') ? reference : `${storeDir}/${reference}`;
}

function parseRawHash(raw: RawHash, path: string): Hash {
  if (typeof raw === 'string') return parseHash(raw);
  const { algorithm, format, hash } = raw;
  // parseHash tells base16 and nix32 apart by length and reads base64 in SRI form.
  if (algorithm && hash && (format === 'base16' || format === 'nix32' || format === 'base32')) return parseHash(`${algorithm}:${hash}`);
  if (algorithm && hash && format === 'base64') return parseHash(`${algorithm}-${hash}`);
  if (algorithm && hash && format === 'sri') return parseHash(hash);
  throw new Error(`nix path-info printed a hash for ${path} in a form we do not know: ${JSON.stringify(raw)}`);
}

/** Nix's string form of a content address, which narinfos carry in `CA:`. */
const CA_PREFIX: Record<string, string> = { text: 'text:', flat: 'fixed:', nar: 'fixed:r:', git: 'fixed:git:' };

function parseRawCa(raw: RawPathInfo['ca'], path: string): string | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (typeof raw === 'string') return raw;
  const prefix = CA_PREFIX[raw.method ?? ''];
  if (!prefix || raw.hash === undefined) {
    throw new Error(`nix path-info printed a content address for ${path} in a form we do not know: ${JSON.stringify(raw)}`);
  }
  return prefix + formatHashBase32(parseRawHash(raw.hash, path));
}

function parseRawSignature(raw: string | { keyName?: string; sig?: string }): string {
  return typeof raw === 'string' ? raw : `${raw.keyName}:${raw.sig}`;
}

function toPathInfo(path: string, raw: RawPathInfo, storeDir: string): PathInfo {
  if (raw.valid === false || raw.narHash === undefined || raw.narSize === undefined) {
    throw new UserError(`${path} is not a valid store path`, 'build or fetch it first (nix-build, nix-store --realise)');
  }
  const entryStoreDir = raw.storeDir ?? storeDir;
  return {
    path,
    narHash: parseRawHash(raw.narHash, path),
    narSize: raw.narSize,
    references: (raw.references ?? []).map((reference) => fullPath(reference, entryStoreDir)),
    deriver: raw.deriver ? fullPath(raw.deriver, entryStoreDir) : undefined,
    sigs: (raw.signatures ?? []).map(parseRawSignature),
    ca: parseRawCa(raw.ca, path),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads `nix path-info --json` in every shape Nix has printed:
 * - Nix 2.8 to 2.18: an array of objects with `path`, SRI `narHash`, full reference paths;
 * - Nix 2.19 on: an object keyed by full path, `null` for an invalid path;
 * - `--json-format 2` and later: `{version, storeDir, info: {<base name>: …}}`, base-name
 *   references, and for a while structured hashes, content addresses and signatures.
 */
export function parsePathInfoJson(json: string, storeDir = DEFAULT_STORE_DIR): PathInfo[] {
  const parsed: unknown = JSON.parse(json);
  if (Array.isArray(parsed)) {
    return (parsed as RawPathInfo[]).map((raw) => toPathInfo(raw.path ?? '?', raw, storeDir));
  }
  if (isObject(parsed)) {
    const wrapped = isObject(parsed.info) && typeof parsed.version === 'number';
    const entries = (wrapped ? parsed.info : parsed) as Record<string, RawPathInfo | null>;
    const topStoreDir = wrapped && typeof parsed.storeDir === 'string' ? parsed.storeDir : storeDir;
    return Object.entries(entries).map(([path, raw]) => toPathInfo(fullPath(path, topStoreDir), raw ?? { valid: false }, topStoreDir));
  }
  throw new Error('nix path-info --json printed neither an array nor an object');
}
