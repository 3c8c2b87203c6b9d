// What Nix writes beside a NAR when asked (`write-nar-listing=true`, `index-debug-info=true`),
// computed from the NAR parser's events while the NAR streams by: no second walk of the tree.
// Nix's own: nar-accessor.cc listNar (the `.ls` JSON) and binary-cache-store.cc (debuginfo/).
import type { NarListener, NarParser } from './parser.js';

// Entries in a Map, in NAR order (sorted by bytes, as Nix lists them): a plain object would put
// names like "10" before "9" and give "__proto__" a meaning.
export type ListingNode =
  | { type: 'directory'; entries: Map<string, ListingNode> }
  | { type: 'regular'; size: number; executable?: true; narOffset: number }
  | { type: 'symlink'; target: string };

/** One `debuginfo/<build-id>.debug` entry: `{"archive":"../<nar url>","member":"lib/debug/..."}`. */
export interface DebugInfoMember {
  buildId: string;
  member: string;
}

const BUILD_ID_DIR = /^lib\/debug\/\.build-id\/([0-9a-f]{2})\/([0-9a-f]{38}\.debug)$/;

/**
 * A NarListener that records the tree as Nix lists it. `attach` it to the parser that reads the
 * NAR (it needs the parser's position for each file's narOffset); `listing()` after the end.
 */
export class NarListingBuilder implements NarListener {
  private root: ListingNode | undefined;
  private parser: Pick<NarParser, 'position'> | undefined;
  private readonly debugMembers: DebugInfoMember[] = [];

  attach(parser: Pick<NarParser, 'position'>): this {
    this.parser = parser;
    return this;
  }

  private place(rawPath: Buffer, node: ListingNode): void {
    if (rawPath.length === 0) {
      this.root = node;
      return;
    }
    const names = rawPath.toString('utf8').split('/');
    let directory = this.root;
    for (const name of names.slice(0, -1)) {
      if (directory?.type !== 'directory') return;
      directory = directory.entries.get(name);
    }
    if (directory?.type === 'directory') directory.entries.set(names[names.length - 1]!, node);
  }

  directory(rawPath: Buffer): void {
    this.place(rawPath, { type: 'directory', entries: new Map() });
  }

  symlink(rawPath: Buffer, rawTarget: Buffer): void {
    this.place(rawPath, { type: 'symlink', target: rawTarget.toString('utf8') });
  }

  regular(rawPath: Buffer, executable: boolean, size: number): void {
    const narOffset = this.parser?.position ?? 0;
    this.place(rawPath, executable ? { type: 'regular', size, executable: true, narOffset } : { type: 'regular', size, narOffset });
    const match = BUILD_ID_DIR.exec(rawPath.toString('utf8'));
    if (match) this.debugMembers.push({ buildId: `${match[1]}${match[2]}`, member: match[0] });
  }

  /** The `.ls` text: `{"version":1,"root":...}`, as Nix writes it. */
  listingJson(): string {
    if (!this.root) throw new Error('the NAR has not been read yet');
    return `{"version":1,"root":${nodeJson(this.root)}}`;
  }

  /** What belongs under `debuginfo/` for this NAR, in NAR order. */
  debugInfo(): DebugInfoMember[] {
    return this.debugMembers;
  }
}

function nodeJson(node: ListingNode): string {
  if (node.type !== 'directory') return JSON.stringify(node);
  const entries = [...node.entries].map(([name, child]) => `${JSON.stringify(name)}:${nodeJson(child)}`);
  return `{"type":"directory","entries":{${entries.join(',')}}}`;
}

/** The text of `debuginfo/<buildId>`: where the member lives, relative to debuginfo/. */
export function debugInfoJson(member: DebugInfoMember, narUrl: string): string {
  return JSON.stringify({ archive: `../${narUrl}`, member: member.member });
}

/** A `debuginfo/` entry read back: where its member lives. Undefined for text that is not one. */
export function parseDebugInfoJson(text: string): { archive: string; member: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { archive, member } = parsed as { archive?: unknown; member?: unknown };
  return typeof archive === 'string' && typeof member === 'string' ? { archive, member } : undefined;
}

type JsonNode = { type?: unknown; size?: unknown; executable?: unknown; narOffset?: unknown; target?: unknown; entries?: unknown };

function firstDifference(stored: JsonNode, computed: JsonNode, path: string): string | undefined {
  if (typeof stored !== 'object' || stored === null || stored.type !== computed.type) return path;
  if (computed.type === 'regular') {
    const same =
      stored.size === computed.size &&
      stored.narOffset === computed.narOffset &&
      (stored.executable === true) === (computed.executable === true);
    return same ? undefined : path;
  }
  if (computed.type === 'symlink') return stored.target === computed.target ? undefined : path;
  const storedEntries = (typeof stored.entries === 'object' && stored.entries !== null ? stored.entries : {}) as Record<string, JsonNode>;
  const computedEntries = computed.entries as Record<string, JsonNode>;
  const names = new Set([...Object.keys(storedEntries), ...Object.keys(computedEntries)]);
  for (const name of [...names].sort()) {
    const child = `${path === '/' ? '' : path}/${name}`;
    if (!Object.hasOwn(storedEntries, name) || !Object.hasOwn(computedEntries, name)) return child;
    const difference = firstDifference(storedEntries[name]!, computedEntries[name]!, child);
    if (difference !== undefined) return difference;
  }
  return undefined;
}

/**
 * Where a stored `.ls` text disagrees with the listing computed from its NAR (`listingJson()`):
 * undefined when they say the same (key order and spacing aside), else the first path inside the
 * store path that differs ('/' for the root), or what is wrong with the text.
 */
export function listingDifference(storedText: string, computedJson: string): string | undefined {
  let stored: { version?: unknown; root?: unknown };
  try {
    stored = JSON.parse(storedText) as typeof stored;
  } catch {
    return 'it is not JSON';
  }
  if (typeof stored !== 'object' || stored === null || stored.version !== 1) return 'it is not a version 1 listing';
  const computed = JSON.parse(computedJson) as { root: JsonNode };
  const path = firstDifference(stored.root as JsonNode, computed.root, '/');
  return path === undefined ? undefined : `it differs at ${path}`;
}
