// The paths of a cache in columns, one row per store path hash part, so a cache of a million
// paths fits in memory: hash parts and names interned as bytes, references as row numbers, sizes
// and dates as numbers, no narinfo text (gc keeps those apart, deflated: narinfo-texts.ts).
// A row exists for every hash part seen, in a listing or as a reference; it is present once its
// narinfo has been read. Of a narinfo only what info, gc and delete use is kept.
import type { NarInfo } from '../nix/narinfo.js';
import { DEFAULT_STORE_DIR, HASH_PART_LENGTH } from '../nix/store-path.js';
import { InternTable } from '../util/intern-table.js';
import { TextPool } from '../util/text-pool.js';
import { withRoom } from '../util/typed-growth.js';

/** What a row takes from the listing and the NAR table besides its narinfo. */
export interface RowSource {
  info: NarInfo;
  /** Milliseconds since the epoch: when the narinfo was written. */
  pushedAt: number;
  narInfoSize: number;
  /** The row of its URL in the NAR table, or -1 when the listing did not show that file. */
  narIndex: number;
  /** Keep the deriver's name (gc and delete remove build logs no path names any more). */
  keepDeriver: boolean;
}

export class PathTable {
  readonly storeDir = DEFAULT_STORE_DIR;
  private readonly hashes = new InternTable();
  private readonly names = new TextPool();
  private readonly compressions: string[] = [];
  /** Pool handle + 1 of the name after `<hash>-`; 0 while unknown. */
  private nameOf = new Uint32Array(0);
  private deriverOf = new Uint32Array(0);
  private presentMarks = new Uint8Array(0);
  private narOf = new Int32Array(0);
  private readonly unlistedUrls = new Map<number, string>();
  private compressionOf = new Uint16Array(0);
  private narSizeOf = new Float64Array(0);
  private fileSizeOf = new Float64Array(0);
  private narInfoSizeOf = new Float64Array(0);
  private pushedAtOf = new Float64Array(0);
  private referenceStart = new Uint32Array(0);
  private referenceCount = new Uint32Array(0);
  private referenceList = new Uint32Array(0);
  private referencesUsed = 0;
  /** Rows whose narinfo was read. */
  size = 0;

  /** Rows in all, present or not: row numbers run below this. */
  get count(): number {
    return this.hashes.count;
  }

  /** The row of `hashPart`, made if new. */
  row(hashPart: string): number {
    const row = this.hashes.intern(hashPart);
    const rows = row + 1;
    if (rows > this.presentMarks.length) {
      this.nameOf = withRoom(this.nameOf, rows);
      this.deriverOf = withRoom(this.deriverOf, rows);
      this.presentMarks = withRoom(this.presentMarks, rows);
      this.narOf = withRoom(this.narOf, rows);
      this.compressionOf = withRoom(this.compressionOf, rows);
      this.narSizeOf = withRoom(this.narSizeOf, rows);
      this.fileSizeOf = withRoom(this.fileSizeOf, rows);
      this.narInfoSizeOf = withRoom(this.narInfoSizeOf, rows);
      this.pushedAtOf = withRoom(this.pushedAtOf, rows);
      this.referenceStart = withRoom(this.referenceStart, rows);
      this.referenceCount = withRoom(this.referenceCount, rows);
    }
    return row;
  }

  /** The row of `hashPart`, or -1 when it was never seen. */
  indexOf(hashPart: string): number {
    return this.hashes.indexOf(hashPart);
  }

  /** Whether the cache has a readable narinfo for `hashPart`. */
  has(hashPart: string): boolean {
    const row = this.hashes.indexOf(hashPart);
    return row >= 0 && this.presentMarks[row] === 1;
  }

  isPresent(row: number): boolean {
    return this.presentMarks[row] === 1;
  }

  /** Present rows, in row order. */
  *rows(): Generator<number> {
    for (let row = 0; row < this.count; row++) if (this.presentMarks[row] === 1) yield row;
  }

  hashPart(row: number): string {
    return this.hashes.text(row);
  }

  /** The full store path, as its narinfo (or, for a row never read, a referrer's) names it. */
  storePath(row: number): string {
    const name = this.nameOf[row]!;
    return `${this.storeDir}/${this.hashes.text(row)}${name === 0 ? '' : `-${this.names.get(name - 1)}`}`;
  }

  narIndex(row: number): number {
    return this.narOf[row]!;
  }

  /** The URL its narinfo gives, when the NAR table lacks that file (else see narIndex). */
  unlistedUrl(row: number): string | undefined {
    return this.unlistedUrls.get(row);
  }

  compression(row: number): string {
    return this.compressions[this.compressionOf[row]!]!;
  }

  narSize(row: number): number {
    return this.narSizeOf[row]!;
  }

  fileSize(row: number): number | undefined {
    const size = this.fileSizeOf[row]!;
    return Number.isNaN(size) ? undefined : size;
  }

  narInfoSize(row: number): number {
    return this.narInfoSizeOf[row]!;
  }

  /** Milliseconds since the epoch. */
  pushedAt(row: number): number {
    return this.pushedAtOf[row]!;
  }

  /** The deriver's base name (`<hash>-<name>.drv`), when kept and known. */
  deriverName(row: number): string | undefined {
    const handle = this.deriverOf[row]!;
    return handle === 0 ? undefined : this.names.get(handle - 1);
  }

  /** The rows its narinfo refers to, each once, in the narinfo's order (itself included if listed). */
  references(row: number): Uint32Array {
    const start = this.referenceStart[row]!;
    return this.referenceList.subarray(start, start + this.referenceCount[row]!);
  }

  /** Records a listed narinfo's file before it is read. */
  setListed(row: number, pushedAt: number, narInfoSize: number): void {
    this.pushedAtOf[row] = pushedAt;
    this.narInfoSizeOf[row] = narInfoSize;
  }

  /** Fills the row of `info.storePath` (its hash part's row must exist) from its parsed narinfo. */
  setPresent(row: number, source: RowSource): void {
    const { info } = source;
    if (this.presentMarks[row] === 1) throw new Error(`${info.storePath} was read twice`);
    this.setName(row, info.storePath.slice(info.storePath.lastIndexOf('/') + 1), true);
    const references = new Set<number>();
    for (const reference of info.references) {
      const base = reference.slice(reference.lastIndexOf('/') + 1);
      const target = this.row(base.slice(0, HASH_PART_LENGTH));
      this.setName(target, base, false);
      references.add(target);
    }
    this.referenceList = withRoom(this.referenceList, this.referencesUsed + references.size);
    this.referenceStart[row] = this.referencesUsed;
    this.referenceCount[row] = references.size;
    for (const target of references) this.referenceList[this.referencesUsed++] = target;
    this.narOf[row] = source.narIndex;
    if (source.narIndex < 0) this.unlistedUrls.set(row, info.url);
    let compression = this.compressions.indexOf(info.compression);
    if (compression < 0) compression = this.compressions.push(info.compression) - 1;
    this.compressionOf[row] = compression;
    this.narSizeOf[row] = info.narSize;
    this.fileSizeOf[row] = info.fileSize ?? NaN;
    this.narInfoSizeOf[row] = source.narInfoSize;
    this.pushedAtOf[row] = source.pushedAt;
    if (source.keepDeriver && info.deriver) this.deriverOf[row] = this.names.add(info.deriver.slice(info.deriver.lastIndexOf('/') + 1)) + 1;
    this.presentMarks[row] = 1;
    this.size++;
  }

  /** A path's own narinfo names it; a referrer's name stands in until then. */
  private setName(row: number, base: string, own: boolean): void {
    if (!own && this.nameOf[row] !== 0) return;
    this.nameOf[row] = this.names.add(base.slice(HASH_PART_LENGTH + 1)) + 1;
  }
}
