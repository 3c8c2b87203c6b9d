/**
 * Nix's base32: its own alphabet (no e, o, u, t) and its own bit order, which reads the
 * bytes from the end. Not RFC 4648; a hash printed by Nix decodes only with this.
 */
export const NIX_BASE32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DIGIT_OF = new Map<string, number>([...NIX_BASE32_ALPHABET].map((char, index) => [char, index]));

export function base32EncodedLength(byteLength: number): number {
  return Math.floor((byteLength * 8 - 1) / 5) + 1;
}

export function encodeBase32(bytes: Uint8Array): string {
  const length = base32EncodedLength(bytes.length);
  let out = '';
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const low = bytes[i]! >> j;
    const high = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    out += NIX_BASE32_ALPHABET[(low | high) & 0x1f];
  }
  return out;
}

export function decodeBase32(text: string, byteLength: number): Uint8Array {
  if (text.length !== base32EncodedLength(byteLength)) {
    throw new Error(`base32 string has ${text.length} characters, expected ${base32EncodedLength(byteLength)}`);
  }
  const bytes = new Uint8Array(byteLength);
  for (let n = 0; n < text.length; n++) {
    const char = text[text.length - n - 1]!;
    const digit = DIGIT_OF.get(char);
    if (digit === undefined) throw new Error(`invalid character '${char}' in Nix base32 string`);
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    bytes[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) bytes[i + 1]! |= carry;
    else if (carry !== 0) throw new Error('Nix base32 string has bits beyond its length');
  }
  return bytes;
}

export function isBase32(text: string): boolean {
  for (const char of text) if (!DIGIT_OF.has(char)) return false;
  return true;
}
