// The receiving end of a ChunkSender that consumes asynchronously: chunks are queued as their
// messages arrive and read as an async stream. A chunk is handed back (`release`) when the
// reader asks for the next one, so each is a view to use before asking for more.

export class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly release: (buffer: ArrayBuffer) => void) {}

  push(buffer: ArrayBuffer, length: number): void {
    this.chunks.push(Buffer.from(buffer, 0, length));
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The reader's next step throws `error`. */
  fail(error: Error): void {
    this.failure ??= error;
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk) {
        yield chunk;
        this.release(chunk.buffer as ArrayBuffer);
      } else if (this.ended) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    }
  }

  private notify(): void {
    this.wake?.();
  }
}
