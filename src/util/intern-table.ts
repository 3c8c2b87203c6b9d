// Strings to dense indexes (0, 1, 2, … in the order first seen) and back, with the strings kept
// as bytes in a TextPool and the lookup as open addressing in one Int32Array: tens of bytes a
// string where a Map<string, number> costs over a hundred.
import { TextPool } from './text-pool.js';
import { withRoom } from './typed-growth.js';

function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

export class InternTable {
  private readonly pool = new TextPool();
  private handles = new Uint32Array(1024);
  /** Index + 1 of the string in each slot; 0 is empty. Kept at most half full. */
  private slots = new Int32Array(4096);
  private mask = 4095;
  count = 0;

  private slotOf(text: string): number {
    let slot = hashOf(text) & this.mask;
    for (;;) {
      const entry = this.slots[slot]!;
      if (entry === 0 || this.pool.get(this.handles[entry - 1]!) === text) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  /** The index of `text`, or -1. */
  indexOf(text: string): number {
    return this.slots[this.slotOf(text)]! - 1;
  }

  /** The index of `text`, added if new. */
  intern(text: string): number {
    const slot = this.slotOf(text);
    if (this.slots[slot]! !== 0) return this.slots[slot]! - 1;
    const index = this.count++;
    this.handles = withRoom(this.handles, this.count);
    this.handles[index] = this.pool.add(text);
    this.slots[slot] = index + 1;
    if (this.count * 2 > this.slots.length) this.rehash();
    return index;
  }

  text(index: number): string {
    if (index < 0 || index >= this.count) throw new RangeError(`no string at index ${index}`);
    return this.pool.get(this.handles[index]!);
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = hashOf(this.pool.get(this.handles[index]!)) & this.mask;
      while (this.slots[slot]! !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = index + 1;
    }
  }
}
