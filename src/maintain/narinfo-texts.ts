// The narinfo texts gc and delete may have to put back (remove-paths.ts: a racing push refers to
// a path just deleted), kept deflated in blocks of about 64 KiB: narinfos share field names and
// repeat hashes (URL and FileHash, references among neighbours), so a block takes a fraction of
// the texts, and one is inflated only for the rare text asked back.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { withRoom } from '../util/typed-growth.js';

const BLOCK_BYTES = 64 * 1024;

export class NarInfoTexts {
  private readonly blocks: Buffer[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Per row: block number + 1 (0: none), and where in the inflated block its text lies. */
  private blockOf = new Uint32Array(0);
  private startOf = new Uint32Array(0);
  private lengthOf = new Uint32Array(0);
  private inflated: { block: number; bytes: Buffer } | undefined;

  add(row: number, text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.blockOf = withRoom(this.blockOf, row + 1);
    this.startOf = withRoom(this.startOf, row + 1);
    this.lengthOf = withRoom(this.lengthOf, row + 1);
    this.blockOf[row] = this.blocks.length + 1;
    this.startOf[row] = this.pendingBytes;
    this.lengthOf[row] = bytes.length;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= BLOCK_BYTES) this.seal();
  }

  get(row: number): string {
    const block = (this.blockOf[row] ?? 0) - 1;
    if (block < 0) throw new Error(`no narinfo text kept for row ${row}`);
    const bytes = block === this.blocks.length ? Buffer.concat(this.pending) : this.inflate(block);
    return bytes.toString('utf8', this.startOf[row]!, this.startOf[row]! + this.lengthOf[row]!);
  }

  private inflate(block: number): Buffer {
    if (this.inflated?.block !== block) this.inflated = { block, bytes: inflateRawSync(this.blocks[block]!) };
    return this.inflated.bytes;
  }

  private seal(): void {
    this.blocks.push(deflateRawSync(Buffer.concat(this.pending)));
    this.pending = [];
    this.pendingBytes = 0;
  }
}
