// The NAR grammar as the push parser walks it (wire.ts has the format): its states, the fixed
// token or longest value each state reads, and Nix's rule for entry names.
import { MAX_TOKEN_LENGTH } from './framing.js';
import { NAR_MAGIC } from './wire.js';

// Far above anything real (Linux: 255-byte names, 4096-byte paths), low enough that a corrupt
// length is an error and not a huge allocation.
export const MAX_NAME_LENGTH = 4096;
export const MAX_TARGET_LENGTH = 65536;
export const SLASH = 0x2f;
export const EMPTY = Buffer.alloc(0);
export const DIRECTORY = Buffer.from('directory');
export const REGULAR = Buffer.from('regular');
export const SYMLINK = Buffer.from('symlink');
export const EXECUTABLE = Buffer.from('executable');
export const CONTENTS = Buffer.from('contents');
export const ENTRY = Buffer.from('entry');
export const CLOSE_PAREN = Buffer.from(')');

/** A short quoted rendering of untrusted bytes for error messages. */
export function quote(bytes: Buffer): string {
  const text = bytes.subarray(0, 80).toString('utf8');
  return `'${text}${bytes.length > 80 ? '…' : ''}'`;
}

/** Nix's rule for entry names, checked byte-wise. */
export function checkName(name: Buffer): string | undefined {
  if (name.length === 0) return 'empty entry name';
  if (name.length === 1 && name[0] === 0x2e) return "entry name '.'";
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "entry name '..'";
  if (name.includes(SLASH)) return `entry name ${quote(name)} contains '/'`;
  if (name.includes(0)) return `entry name ${quote(name)} contains a NUL byte`;
  return undefined;
}

// Where the parser is in the grammar (wire.ts). The states up to NODE_KEYWORD each read one
// string: a fixed token (KEYWORD) or a value of at most MAX_VALUE_LENGTH bytes.
export const MAGIC = 0;
export const OPEN = 1;
export const TYPE_KEYWORD = 2;
export const TYPE = 3;
export const REGULAR_TAG = 4;
export const EXECUTABLE_VALUE = 5;
export const CONTENTS_KEYWORD = 6;
export const TARGET_KEYWORD = 7;
export const TARGET = 8;
export const CLOSE = 9;
export const ENTRY_CLOSE = 10;
export const DIRECTORY_TAG = 11;
export const ENTRY_OPEN = 12;
export const NAME_KEYWORD = 13;
export const NAME = 14;
export const NODE_KEYWORD = 15;
export const SIZE = 16;
export const CONTENTS_BYTES = 17;
export const CONTENTS_PADDING = 18;
export const END = 19;

export const KEYWORD: Array<Buffer | undefined> = [];
KEYWORD[MAGIC] = Buffer.from(NAR_MAGIC);
KEYWORD[OPEN] = Buffer.from('(');
KEYWORD[TYPE_KEYWORD] = Buffer.from('type');
KEYWORD[EXECUTABLE_VALUE] = EMPTY;
KEYWORD[TARGET_KEYWORD] = Buffer.from('target');
KEYWORD[CLOSE] = CLOSE_PAREN;
KEYWORD[ENTRY_CLOSE] = CLOSE_PAREN;
KEYWORD[ENTRY_OPEN] = Buffer.from('(');
KEYWORD[NAME_KEYWORD] = Buffer.from('name');
KEYWORD[NODE_KEYWORD] = Buffer.from('node');

export const MAX_VALUE_LENGTH: number[] = [];
MAX_VALUE_LENGTH[TYPE] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[REGULAR_TAG] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[CONTENTS_KEYWORD] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[DIRECTORY_TAG] = MAX_TOKEN_LENGTH;
MAX_VALUE_LENGTH[NAME] = MAX_NAME_LENGTH;
MAX_VALUE_LENGTH[TARGET] = MAX_TARGET_LENGTH;
