// A byte stream sent to another thread in chunks whose memory is transferred, not copied, and
// comes back once the receiver is done with it: at most `window` chunks are out at once, so a
// gigabyte cycles through a few MiB, and a slow receiver slows the sender instead of filling
// memory.

export interface ChunkSenderOptions {
  /** Posts one chunk, transferring `buffer`; the receiver hands it back through `returned`. */
  send: (buffer: ArrayBuffer, length: number) => void;
  chunkSize: number;
  window: number;
}

export class ChunkSender {
  /** Bytes written so far. */
  written = 0;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private current: Buffer | undefined;
  private filled = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: ChunkSenderOptions) {}

  /** Copies `piece` out (the caller may reuse it at once); waits while the window is full. */
  async write(piece: Buffer): Promise<void> {
    for (let offset = 0; offset < piece.length;) {
      const room = await this.room();
      const copied = piece.copy(room, 0, offset);
      this.commit(copied);
      offset += copied;
    }
  }

  /** Free space in the chunk being filled, to write into in place; waits while the window is full. */
  async room(): Promise<Buffer> {
    if (this.failure) throw this.failure;
    this.current ??= await this.nextBuffer();
    return this.current.subarray(this.filled);
  }

  /** The first `count` bytes of the last `room` are filled. */
  commit(count: number): void {
    this.filled += count;
    this.written += count;
    if (this.filled === this.current!.length) this.flush();
  }

  /** Sends what the current chunk holds, full or not. */
  flush(): void {
    if (!this.current || this.filled === 0) return;
    this.options.send(this.current.buffer as ArrayBuffer, this.filled);
    this.current = undefined;
    this.filled = 0;
  }

  /** A chunk's memory, back from the receiver. */
  returned(buffer: ArrayBuffer): void {
    this.free.push(Buffer.from(buffer));
    this.wake?.();
  }

  /** From now on `room` and `write` throw `error` (a waiting one too). */
  fail(error: Error): void {
    this.failure ??= error;
    this.wake?.();
  }

  private async nextBuffer(): Promise<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const recycled = this.free.pop();
      if (recycled) return recycled;
      if (this.allocated < this.options.window) {
        this.allocated++;
        // Memory of its own, so it can be transferred.
        return Buffer.allocUnsafeSlow(this.options.chunkSize);
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
