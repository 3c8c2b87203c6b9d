// The wire format of Nix ARchives (NAR): the framing and the fixed tokens, shared by the writer
// and the reader.
//
// A NAR is a sequence of strings; each string is a little-endian u64 length, the bytes, and zero
// padding up to a multiple of 8. The tree is written as nested `( type ... )` nodes:
//
//   "nix-archive-1" node
//   node      = "(" "type" "regular" ["executable" ""] "contents" <bytes> ")"
//             | "(" "type" "symlink" "target" <target> ")"
//             | "(" "type" "directory" ("entry" "(" "name" <name> "node" node ")")* ")"
//
// Directory entries come sorted by the raw bytes of their names, so one tree has exactly one NAR
// and therefore one NarHash.

export const NAR_MAGIC = 'nix-archive-1';

/** Zero bytes for padding: at most 7 are ever needed. */
export const ZERO_PADDING = Buffer.alloc(8);

/** How many zero bytes follow a string of `length` bytes to reach a multiple of 8. */
export function paddingLength(length: number): number {
  return (8 - (length % 8)) % 8;
}

/** One string as the NAR frames it: length, bytes, padding. */
export function frameString(value: string | Uint8Array): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const framed = Buffer.alloc(8 + bytes.length + paddingLength(bytes.length));
  writeLength(framed, bytes.length, 0);
  bytes.copy(framed, 8);
  return framed;
}

/** Several strings framed back to back: the fixed token runs the writer copies in one go. */
export function frameTokens(...tokens: string[]): Buffer {
  return Buffer.concat(tokens.map((token) => frameString(token)));
}

/** Writes a u64 little-endian length; JS numbers are exact up to 2^53, far beyond any real file. */
export function writeLength(target: Buffer, length: number, offset: number): void {
  target.writeUInt32LE(length % 0x1_0000_0000, offset);
  target.writeUInt32LE(Math.floor(length / 0x1_0000_0000), offset + 4);
}

/** The fixed token runs of a NAR, framed once. */
export const TOKENS = {
  magic: frameTokens(NAR_MAGIC),
  regularOpen: frameTokens('(', 'type', 'regular', 'contents'),
  executableOpen: frameTokens('(', 'type', 'regular', 'executable', '', 'contents'),
  symlinkOpen: frameTokens('(', 'type', 'symlink', 'target'),
  directoryOpen: frameTokens('(', 'type', 'directory'),
  entryOpen: frameTokens('entry', '(', 'name'),
  node: frameTokens('node'),
  close: frameTokens(')'),
} as const;
