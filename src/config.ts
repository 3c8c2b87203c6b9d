import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { JsonMap } from '@iarna/toml';
import { createRequire } from 'node:module';
import { describeFsError, UserError } from './errors.js';
import { writeFileAtomically } from './util/atomic-write.js';

// @iarna/toml is CommonJS: its parser alone, required, loads in about half the time an ESM import
// of the whole package takes, and every command that reads the config waits for it.
const requireToml = createRequire(import.meta.url);
const parseToml = (text: string): JsonMap => (requireToml('@iarna/toml/parse-string.js') as (text: string) => JsonMap)(text);
const stringifyToml = (map: JsonMap): string => (requireToml('@iarna/toml/stringify.js') as (map: JsonMap) => string)(map);

/** One cache the user has created or registered. */
export interface CacheEntry {
  url: string;
  /** Nix-format secret key `name:base64`; only for caches we sign for. */
  signingKey?: string | undefined;
  publicKey?: string | undefined;
  /** A key the user pinned with `use --public-key`: the server's key must match it. */
  pinnedPublicKey?: string | undefined;
  /** This cache's own token (`authtoken --cache NAME`): the only token an HTTP cache is sent. */
  authToken?: string | undefined;
  /** Key names whose signatures mark a path as served upstream (not pushed); default cache.nixos.org-1. */
  upstreamKeys?: string[] | undefined;
  /** Push build logs, NAR listings, the debug-info index (`logs`, `listings`, `debug_info`), as the flags do. */
  logs?: boolean | undefined;
  listings?: boolean | undefined;
  debugInfo?: boolean | undefined;
  /**
   * Keys replaced by `generate-keypair --rotate` (Nix format, secret): still trusted by `use` and
   * `verify` during the rollover, until `sign --drop NAME` retires them for good.
   */
  retiredSigningKeys?: string[] | undefined;
}

/** Credentials for one server (attic), keyed by host[:port] under [servers."HOST"]. */
export interface ServerEntry {
  token?: string | undefined;
}

export interface Config {
  authToken?: string | undefined;
  /** Per-server tokens; a server without one uses authToken. */
  servers?: Record<string, ServerEntry> | undefined;
  /** The cachix API host, when not https://cachix.org. */
  host?: string | undefined;
  caches: Record<string, CacheEntry>;
}

/** A cache name: letters, digits, dots, dashes and underscores, starting with a letter or digit. */
export function isCacheName(name: string): boolean {
  return /^[a-z0-9][a-z0-9._-]*$/i.test(name) && name.length <= 100;
}

export function checkCacheName(name: string): void {
  if (!isCacheName(name)) {
    throw new UserError(
      `'${name}' is not a valid cache name`,
      'use letters, digits, dots, dashes and underscores, starting with a letter or digit',
    );
  }
}

/** What a TOML value is, for messages that say what was found instead of what was expected. */
function tomlKind(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  return `a ${typeof value}`;
}

function stringList(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new UserError(`${where} must be a list of key names`, 'e.g. upstream_keys = ["cache.nixos.org-1"]');
  }
  return value as string[];
}

function flag(table: Record<string, unknown>, key: string, name: string, path: string): boolean | undefined {
  const value = table[key];
  if (value === undefined || typeof value === 'boolean') return value;
  throw new UserError(`${path}: ${key} of cache '${name}' is ${tomlKind(value)}, not true or false`, `write ${key} = true (no quotes)`);
}

function entryFromToml(name: string, raw: unknown, path: string): CacheEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(
      `${path}: caches.${name} is ${tomlKind(raw)}, not a table`,
      `write each cache as a section: [caches.${name}] and url = "..." on the next line`,
    );
  }
  const url = (raw as { url?: unknown }).url;
  if (url === undefined) throw new UserError(`${path}: cache '${name}' has no url`, `add url = "..." under [caches.${name}]`);
  if (typeof url !== 'string') {
    throw new UserError(`${path}: the url of cache '${name}' is ${tomlKind(url)}, not a string`, `write it in quotes: url = "file:///..."`);
  }
  const table = raw as Record<string, unknown>;
  const text = (key: string): string | undefined => (typeof table[key] === 'string' ? (table[key] as string) : undefined);
  return {
    url: table.url as string,
    signingKey: text('signing_key'),
    publicKey: text('public_key'),
    pinnedPublicKey: text('pinned_public_key'),
    authToken: text('auth_token'),
    upstreamKeys: stringList(table.upstream_keys, `${path}: upstream_keys of cache '${name}'`),
    logs: flag(table, 'logs', name, path),
    listings: flag(table, 'listings', name, path),
    debugInfo: flag(table, 'debug_info', name, path),
    retiredSigningKeys: stringList(table.retired_signing_keys, `${path}: retired_signing_keys of cache '${name}'`),
  };
}

export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { caches: {} };
    throw new UserError(
      `cannot read the config ${path}: ${describeFsError(error)}`,
      'point -c (or CACHIX_CONFIG) at the config file, or move what is there away to start afresh',
    );
  }
  let parsed: JsonMap;
  try {
    // Edited on Windows or pasted from one: CRLF is a line end to the user, so it is to us.
    parsed = parseToml(text.replace(/\r\n/g, '\n'));
  } catch (error) {
    const line = (error as { line?: number }).line;
    throw new UserError(
      `config ${path}${line !== undefined ? ` line ${line + 1}` : ''} is not valid TOML`,
      'fix the file by hand or move it away to start afresh',
    );
  }
  const caches: Record<string, CacheEntry> = {};
  if (parsed.caches !== undefined && (typeof parsed.caches !== 'object' || Array.isArray(parsed.caches) || parsed.caches instanceof Date)) {
    throw new UserError(
      `${path}: caches is ${tomlKind(parsed.caches)}, not a table of caches`,
      'write each cache as a section: [caches.NAME] and url = "..." on the next line',
    );
  }
  const rawCaches = (parsed.caches ?? {}) as Record<string, unknown>;
  for (const [name, raw] of Object.entries(rawCaches)) caches[name] = entryFromToml(name, raw, path);
  const servers: Record<string, ServerEntry> = {};
  for (const [host, raw] of Object.entries((parsed.servers ?? {}) as Record<string, unknown>)) {
    const token = (raw as { token?: unknown } | null)?.token;
    servers[host] = { token: typeof token === 'string' ? token : undefined };
  }
  return {
    ...(Object.keys(servers).length > 0 && { servers }),
    authToken: typeof parsed.auth_token === 'string' ? parsed.auth_token : undefined,
    host: typeof parsed.host === 'string' ? parsed.host : undefined,
    caches,
  };
}

function toToml(config: Config): string {
  const map: JsonMap = {};
  if (config.authToken) map.auth_token = config.authToken;
  if (config.host) map.host = config.host;
  const caches: JsonMap = {};
  for (const [name, entry] of Object.entries(config.caches)) {
    const table: JsonMap = { url: entry.url };
    if (entry.publicKey) table.public_key = entry.publicKey;
    if (entry.pinnedPublicKey) table.pinned_public_key = entry.pinnedPublicKey;
    if (entry.signingKey) table.signing_key = entry.signingKey;
    if (entry.authToken) table.auth_token = entry.authToken;
    if (entry.upstreamKeys) table.upstream_keys = entry.upstreamKeys;
    if (entry.logs !== undefined) table.logs = entry.logs;
    if (entry.listings !== undefined) table.listings = entry.listings;
    if (entry.debugInfo !== undefined) table.debug_info = entry.debugInfo;
    if (entry.retiredSigningKeys?.length) table.retired_signing_keys = entry.retiredSigningKeys;
    caches[name] = table;
  }
  map.caches = caches;
  const servers: JsonMap = {};
  for (const [host, entry] of Object.entries(config.servers ?? {})) if (entry.token) servers[host] = { token: entry.token };
  if (Object.keys(servers).length > 0) map.servers = servers;
  return '# cachix configuration: holds signing keys and tokens, keep it private (mode 0600).\n' + stringifyToml(map);
}

/**
 * Writes a file that may hold secrets: created 0600 under a temporary name, then renamed over
 * the old one, so a crash leaves either the old file or the new one, never half of one.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomically(path, text, { mode: 0o600 });
}

export async function saveConfig(path: string, config: Config): Promise<void> {
  try {
    await writeSecretFile(path, toToml(config));
  } catch (error) {
    throw new UserError(
      `cannot write the config ${path}: ${describeFsError(error)}`,
      'make its directory writable for you, or keep the config elsewhere: -c FILE, CACHIX_CONFIG or XDG_CONFIG_HOME',
    );
  }
}

/** A config holding secrets that others can read deserves a warning (not an error: it still works). */
export async function configPermissionWarning(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      return `warning: ${path} is readable by other users and may hold signing keys or tokens; run: chmod 600 ${path}`;
    }
  } catch {
    return undefined;
  }
  return undefined;
}
