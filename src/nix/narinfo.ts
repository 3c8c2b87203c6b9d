import { formatHashBase32, parseHash, type Hash } from './hash.js';
import { DEFAULT_STORE_DIR, parseStorePath, parseStorePathBaseName } from './store-path.js';
import { printable } from '../util/printable.js';

/** What a binary cache says about one store path. References and Deriver are full store paths here. */
export interface NarInfo {
  storePath: string;
  url: string;
  compression: string;
  fileHash?: Hash | undefined;
  fileSize?: number | undefined;
  narHash: Hash;
  narSize: number;
  references: string[];
  deriver?: string | undefined;
  system?: string | undefined;
  sigs: string[];
  ca?: string | undefined;
}

/** A narinfo is a few hundred bytes; anything this large is not one, and is not read further. */
export const MAX_NARINFO_BYTES = 1 << 20;

function baseName(storePath: string): string {
  return storePath.slice(storePath.lastIndexOf('/') + 1);
}

/** The text Nix writes, fields in Nix's order; References and Deriver as base names. */
export function formatNarInfo(info: NarInfo): string {
  const lines = [`StorePath: ${info.storePath}`, `URL: ${info.url}`, `Compression: ${info.compression}`];
  if (info.fileHash) lines.push(`FileHash: ${formatHashBase32(info.fileHash)}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${formatHashBase32(info.narHash)}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${info.references.map(baseName).join(' ')}`);
  if (info.deriver) lines.push(`Deriver: ${baseName(info.deriver)}`);
  if (info.system) lines.push(`System: ${info.system}`);
  for (const sig of info.sigs) lines.push(`Sig: ${sig}`);
  if (info.ca) lines.push(`CA: ${info.ca}`);
  return lines.join('\n') + '\n';
}

/**
 * Reads a narinfo as Nix does: unknown fields are ignored, a missing Compression means bzip2,
 * StorePath, URL, NarHash and NarSize are required. Errors say which line and what.
 */
export function parseNarInfo(text: string, storeDir = DEFAULT_STORE_DIR): NarInfo {
  if (text.length > MAX_NARINFO_BYTES) throw new Error(`narinfo is ${text.length} bytes, larger than any real narinfo`);
  const fields: Partial<NarInfo> & { sigs: string[]; references: string[] } = { sigs: [], references: [] };
  let compression: string | undefined;
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (line === '') return;
    const where = `narinfo line ${index + 1}`;
    const colon = line.indexOf(': ');
    if (colon <= 0) throw new Error(`${where}: expected 'Name: value', got '${printable(line.slice(0, 80))}'`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    const number = (): number => {
      if (!/^\d+$/.test(value)) throw new Error(`${where}: ${key} is not a number`);
      const parsed = Number(value);
      if (!Number.isSafeInteger(parsed)) throw new Error(`${where}: ${key} is too large`);
      return parsed;
    };
    const hash = (): Hash => {
      try {
        return parseHash(value);
      } catch (error) {
        throw new Error(`${where}: ${key} is not a valid hash`, { cause: error });
      }
    };
    const baseNameToPath = (base: string): string => {
      try {
        parseStorePathBaseName(base);
      } catch (error) {
        throw new Error(`${where}: ${key} has '${base}', which is not a store path name`, { cause: error });
      }
      return `${storeDir}/${base}`;
    };
    switch (key) {
      case 'StorePath':
        try {
          parseStorePath(value, storeDir);
        } catch (error) {
          throw new Error(`${where}: StorePath '${value}' is not a store path in ${storeDir}`, { cause: error });
        }
        fields.storePath = value;
        break;
      case 'URL':
        if (value === '') throw new Error(`${where}: URL is empty`);
        fields.url = value;
        break;
      case 'Compression':
        compression = value;
        break;
      case 'FileHash':
        fields.fileHash = hash();
        break;
      case 'FileSize':
        fields.fileSize = number();
        break;
      case 'NarHash':
        fields.narHash = hash();
        break;
      case 'NarSize':
        fields.narSize = number();
        break;
      case 'References':
        fields.references = value === '' ? [] : value.split(' ').filter(Boolean).map(baseNameToPath);
        break;
      case 'Deriver':
        if (value !== 'unknown-deriver') fields.deriver = baseNameToPath(value);
        break;
      case 'System':
        fields.system = value === '' ? undefined : value;
        break;
      case 'Sig':
        fields.sigs.push(value);
        break;
      case 'CA':
        // Nix reads an empty CA as none (parseContentAddressOpt); so must we, or it would not round-trip.
        fields.ca = value === '' ? undefined : value;
        break;
      default:
        break; // Nix ignores fields it does not know; so do we.
    }
  });
  for (const required of ['storePath', 'url', 'narHash', 'narSize'] as const) {
    if (fields[required] === undefined) {
      const name = { storePath: 'StorePath', url: 'URL', narHash: 'NarHash', narSize: 'NarSize' }[required];
      throw new Error(`narinfo has no ${name} field`);
    }
  }
  return { ...(fields as NarInfo), compression: compression ?? 'bzip2' };
}

/**
 * The string a narinfo signature signs, as Nix computes it:
 * `1;<store path>;<sha256:base32 NarHash>;<NarSize>;<comma-separated full reference paths>`.
 */
export function narInfoFingerprint(info: Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>): string {
  if (info.narHash.algorithm !== 'sha256') throw new Error('a narinfo fingerprint needs a sha256 NarHash');
  return `1;${info.storePath};${formatHashBase32(info.narHash)};${info.narSize};${[...info.references].sort().join(',')}`;
}
