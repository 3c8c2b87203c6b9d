// Many short strings kept as bytes in a few large buffers: a JavaScript string costs its header
// and a pointer besides its characters, which for millions of store path names is most of it.

const CHUNK_BYTES = 1 << 20;
const MAX_TEXT_BYTES = 0xffff;

/** Append-only; `add` returns a handle that `get` turns back into the string. */
export class TextPool {
  private readonly chunks: Buffer[] = [];
  private used = CHUNK_BYTES;

  /** Bytes held, for measurement. */
  get byteLength(): number {
    return this.chunks.length * CHUNK_BYTES;
  }

  add(text: string): number {
    const length = Buffer.byteLength(text, 'utf8');
    if (length > MAX_TEXT_BYTES) throw new Error(`a ${length}-byte text is too long for the pool`);
    if (this.used + 2 + length > CHUNK_BYTES) {
      this.chunks.push(Buffer.allocUnsafe(CHUNK_BYTES));
      this.used = 0;
    }
    const chunk = this.chunks[this.chunks.length - 1]!;
    const handle = (this.chunks.length - 1) * CHUNK_BYTES + this.used;
    chunk.writeUInt16LE(length, this.used);
    chunk.write(text, this.used + 2, length, 'utf8');
    this.used += 2 + length;
    return handle;
  }

  get(handle: number): string {
    const chunk = this.chunks[Math.floor(handle / CHUNK_BYTES)]!;
    const offset = handle % CHUNK_BYTES;
    return chunk.toString('utf8', offset + 2, offset + 2 + chunk.readUInt16LE(offset));
  }
}
