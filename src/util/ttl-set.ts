/**
 * Keys remembered for `ttlMs` each (0: not at all), at most `maxEntries` of them (0: no limit
 * beyond the time). Entries are kept in the order they were added, so expired ones are dropped
 * from the front as new ones come: memory follows what was added within the last `ttlMs`.
 */
export class TtlSet {
  private readonly addedAt = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 0,
    private readonly now: () => number = Date.now,
  ) {}

  has(key: string): boolean {
    const at = this.addedAt.get(key);
    if (at === undefined) return false;
    if (this.now() - at < this.ttlMs) return true;
    this.addedAt.delete(key);
    return false;
  }

  add(key: string): void {
    if (this.ttlMs <= 0) return;
    const now = this.now();
    this.addedAt.delete(key);
    this.addedAt.set(key, now);
    for (const [oldest, at] of this.addedAt) {
      const over = this.maxEntries > 0 && this.addedAt.size > this.maxEntries;
      if (!over && now - at < this.ttlMs) break;
      this.addedAt.delete(oldest);
    }
  }

  get size(): number {
    return this.addedAt.size;
  }
}
