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
