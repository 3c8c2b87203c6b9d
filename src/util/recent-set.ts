/**
 * A set that remembers only its newest `capacity` entries, so a watcher running for weeks keeps
 * a fixed amount of memory however many paths go by. Forgetting an old entry is harmless: the
 * worst case is asking Nix or the cache about a path once more.
 */
export class RecentSet {
  // A Map keeps insertion order, so its first key is always the oldest entry.
  private readonly entries = new Map<string, true>();

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`RecentSet capacity must be a positive whole number, not ${capacity}`);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  add(key: string): void {
    if (this.entries.has(key)) this.entries.delete(key);
    this.entries.set(key, true);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
