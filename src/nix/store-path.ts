import { isBase32 } from './base32.js';

export const DEFAULT_STORE_DIR = '/nix/store';
export const HASH_PART_LENGTH = 32;
/** Nix's limit on the name part of a store path. */
const MAX_NAME_LENGTH = 211;

export interface StorePath {
  storeDir: string;
  /** The 32-character base32 hash part: the key of `<hashPart>.narinfo` in a binary cache. */
  hashPart: string;
  name: string;
}

/**
 * Nix's rule for store path names (libstore path.cc checkName): these characters, at most 211 of
 * them. A leading dot is allowed (Nix 2.8 makes `<hash>-.hidden`), but newer Nix forbids a name
 * `.` or `..` or one whose first dash-separated component is `.` or `..`: such paths are
 * unusable by current Nix, so we refuse them too.
 */
export function checkStorePathName(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.length > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} characters`;
  if (/^\.\.?(-|$)/.test(name)) return `the name's first component is '${name.startsWith('..') ? '..' : '.'}'`;
  const bad = /[^A-Za-z0-9+\-._?=]/.exec(name);
  if (bad) return `the name contains the character '${bad[0]}'`;
  return undefined;
}

/** Validates a store dir as Nix does: absolute, no trailing slash, nothing empty or dotted in it. */
export function checkStoreDir(storeDir: string): string | undefined {
  if (!storeDir.startsWith('/')) return 'the store directory is not an absolute path';
  if (storeDir.length > 1 && storeDir.endsWith('/')) return 'the store directory ends with a slash';
  if (
    storeDir
      .split('/')
      .slice(1)
      .some((part) => part === '' || part === '.' || part === '..')
  ) {
    return 'the store directory is not in canonical form';
  }
  return undefined;
}

export function parseStorePath(text: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const prefix = `${storeDir}/`;
  if (!text.startsWith(prefix)) throw new Error(`'${text}' is not in the Nix store ${storeDir}`);
  const base = text.slice(prefix.length);
  if (base.includes('/')) throw new Error(`'${text}' is inside a store path, not a store path itself`);
  return { storeDir, ...parseStorePathBaseName(base, text) };
}

/** Parses `<hash>-<name>`, as found after the store dir and in narinfo References. */
export function parseStorePathBaseName(base: string, shownAs = base): { hashPart: string; name: string } {
  const hashPart = base.slice(0, HASH_PART_LENGTH);
  if (base.length < HASH_PART_LENGTH + 2 || base[HASH_PART_LENGTH] !== '-') {
    throw new Error(`'${shownAs}' is not a store path (expected <32-character hash>-<name>)`);
  }
  if (!isBase32(hashPart)) throw new Error(`'${shownAs}' has a hash part that is not Nix base32`);
  const name = base.slice(HASH_PART_LENGTH + 1);
  const problem = checkStorePathName(name);
  if (problem) throw new Error(`'${shownAs}' is not a valid store path: ${problem}`);
  return { hashPart, name };
}

export function isStorePath(text: string, storeDir = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(text, storeDir);
    return true;
  } catch {
    return false;
  }
}

export function formatStorePath(path: StorePath): string {
  return `${path.storeDir}/${path.hashPart}-${path.name}`;
}

export function storePathBaseName(path: StorePath): string {
  return `${path.hashPart}-${path.name}`;
}

/** The hash part of a full store path string, without validating it again. */
export function hashPartOf(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf('/') + 1);
  return base.slice(0, HASH_PART_LENGTH);
}
