// The NAR files a listing showed, in columns: names interned, sizes and dates as numbers.
import type { ListedFile } from '../caches/cache.js';
import { InternTable } from '../util/intern-table.js';
import { withRoom } from '../util/typed-growth.js';

export class NarTable {
  private readonly names = new InternTable();
  private sizeOf = new Float64Array(0);
  private modifiedOf = new Float64Array(0);

  get count(): number {
    return this.names.count;
  }

  add(file: ListedFile): number {
    const index = this.names.intern(file.name);
    this.sizeOf = withRoom(this.sizeOf, index + 1);
    this.modifiedOf = withRoom(this.modifiedOf, index + 1);
    this.sizeOf[index] = file.size;
    this.modifiedOf[index] = file.modified.getTime();
    return index;
  }

  /** -1 when the listing did not show it. */
  indexOf(name: string): number {
    return this.names.indexOf(name);
  }

  has(name: string): boolean {
    return this.names.indexOf(name) >= 0;
  }

  name(index: number): string {
    return this.names.text(index);
  }

  size(index: number): number {
    return this.sizeOf[index]!;
  }

  /** Milliseconds since the epoch. */
  modified(index: number): number {
    return this.modifiedOf[index]!;
  }
}
