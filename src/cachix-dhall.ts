// cachix's own config, ~/.config/cachix/cachix.dhall, read (never written) so a user switching
// from cachix keeps their token and keys. cachix 1.11 (Cachix/Client/Config.hs) writes it with
// Dhall's pretty printer from the record
//   { authToken : Text, hostname : Text, binaryCaches : List { name : Text, secretKey : Text } }
// and reads it merged over its defaults, so any of the three fields may be missing. This reads
// exactly that subset of Dhall: one record literal of those fields, text literals, list literals
// (an empty one carries its `: List { name : Text, secretKey : Text }` annotation), `--` and
// `{- -}` comments. Anything else is one error line naming the file and line.
import { readFile } from 'node:fs/promises';
import { UserError } from './errors.js';
import { registerSecret } from './redact.js';

export interface CachixDhallCache {
  name: string;
  /** cachix's bare base64 secret key. */
  secretKey: string;
}

export interface CachixDhallConfig {
  path: string;
  authToken?: string | undefined;
  hostname?: string | undefined;
  binaryCaches: CachixDhallCache[];
}

/** Where cachix keeps it: getXdgDirectory XdgConfig "cachix" </> "cachix.dhall". */
class DhallSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

type Value = { kind: 'text'; text: string } | { kind: 'list'; items: Value[] } | { kind: 'record'; fields: Map<string, Value> };

class Reader {
  private offset = 0;

  constructor(private readonly source: string) {}

  private line(at = this.offset): number {
    let line = 1;
    for (let index = 0; index < at && index < this.source.length; index++) if (this.source[index] === '\n') line++;
    return line;
  }

  fail(message: string, at = this.offset): never {
    throw new DhallSyntaxError(this.line(at), message);
  }

  private skipBlank(): void {
    for (;;) {
      const rest = this.source.slice(this.offset);
      const blank = /^[ \t\r\n]+/.exec(rest)?.[0];
      if (blank) this.offset += blank.length;
      else if (rest.startsWith('--')) {
        const end = this.source.indexOf('\n', this.offset);
        this.offset = end === -1 ? this.source.length : end + 1;
      } else if (rest.startsWith('{-')) {
        const end = this.source.indexOf('-}', this.offset + 2);
        if (end === -1) this.fail('a {- comment is never closed');
        this.offset = end + 2;
      } else return;
    }
  }

  private peek(): string {
    this.skipBlank();
    return this.source[this.offset] ?? '';
  }

  private expect(token: string, what: string): void {
    this.skipBlank();
    if (!this.source.startsWith(token, this.offset)) this.fail(`expected ${what}`);
    this.offset += token.length;
  }

  private label(): string {
    this.skipBlank();
    const name = /^[A-Za-z_][A-Za-z0-9_/-]*/.exec(this.source.slice(this.offset))?.[0];
    if (!name) this.fail('expected a field name');
    this.offset += name.length;
    return name;
  }

  private text(): string {
    this.expect('"', 'a text literal');
    let text = '';
    for (;;) {
      const char = this.source[this.offset];
      if (char === undefined) this.fail('a text literal is never closed');
      this.offset++;
      if (char === '"') return text;
      if (char === '$' && this.source[this.offset] === '{') this.fail('text interpolation ${...} is not supported here', this.offset - 1);
      if (char !== '\\') {
        text += char;
        continue;
      }
      const escaped = this.source[this.offset++];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', $: '$', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (escaped !== undefined && escaped in simple) text += simple[escaped];
      else if (escaped === 'u') {
        const hex = /^(?:[0-9A-Fa-f]{4}|\{[0-9A-Fa-f]{1,6}\})/.exec(this.source.slice(this.offset))?.[0];
        if (!hex) this.fail('a \\u escape needs four hex digits');
        this.offset += hex.length;
        text += String.fromCodePoint(parseInt(hex.replace(/[{}]/g, ''), 16));
      } else this.fail(`unknown escape \\${escaped ?? ''} in a text literal`);
    }
  }

  /** `List { name : Text, secretKey : Text }`: the only type this file ever carries. */
  private listType(): void {
    this.expect('List', 'List { name : Text, secretKey : Text }');
    this.expect('{', 'List { name : Text, secretKey : Text }');
    const fields: string[] = [];
    while (this.peek() !== '}') {
      if (fields.length > 0) this.expect(',', 'a comma or }');
      const name = this.label();
      this.expect(':', 'a colon');
      this.expect('Text', 'Text');
      fields.push(name);
    }
    this.offset++;
    if (fields.sort().join(',') !== 'name,secretKey') this.fail('binaryCaches must be a List { name : Text, secretKey : Text }');
  }

  value(): Value {
    const next = this.peek();
    if (next === '"') return { kind: 'text', text: this.text() };
    if (next === '{') return this.record();
    if (next === '[') return this.list();
    this.fail('expected a text literal, a list or a record');
  }

  private list(): Value {
    this.expect('[', '[');
    const items: Value[] = [];
    while (this.peek() !== ']') {
      if (items.length > 0) this.expect(',', 'a comma or ]');
      items.push(this.value());
    }
    this.offset++;
    if (this.peek() === ':') {
      this.offset++;
      this.listType();
    } else if (items.length === 0) this.fail('an empty list needs its type: [] : List { name : Text, secretKey : Text }');
    return { kind: 'list', items };
  }

  private record(): Value {
    this.expect('{', '{');
    const fields = new Map<string, Value>();
    while (this.peek() !== '}') {
      if (fields.size > 0) this.expect(',', 'a comma or }');
      const at = this.offset;
      const name = this.label();
      if (fields.has(name)) this.fail(`the field ${name} appears twice`, at);
      this.expect('=', `= after ${name}`);
      fields.set(name, this.value());
    }
    this.offset++;
    return { kind: 'record', fields };
  }

  end(): void {
    if (this.peek() !== '') this.fail('expected the end of the file after the record');
  }

  lineOfField(name: string): number {
    const at = new RegExp(`(^|[{,\\s])${name}\\s*=`).exec(this.source)?.index;
    return at === undefined ? 1 : this.line(at + 1);
  }
}

function textField(record: Map<string, Value>, name: string, fail: (message: string) => never): string | undefined {
  const value = record.get(name);
  if (value === undefined) return undefined;
  if (value.kind !== 'text') fail(`${name} must be a text literal`);
  return value.text;
}

/** Parses the text of a cachix.dhall; errors name the file and the line. */
export function parseCachixDhall(source: string, path: string): CachixDhallConfig {
  const reader = new Reader(source);
  const failAt = (line: number, message: string): never => {
    throw new UserError(
      `${path} line ${line}: ${message}`,
      'cachix writes this file itself (cachix authtoken, cachix generate-keypair); fix it or move it away',
    );
  };
  let root: Value;
  try {
    root = reader.value();
    reader.end();
  } catch (error) {
    if (error instanceof DhallSyntaxError) failAt(error.line, error.message);
    throw error;
  }
  if (root.kind !== 'record') return failAt(1, 'expected a record { authToken = ..., hostname = ..., binaryCaches = ... }');
  for (const name of root.fields.keys()) {
    if (!['authToken', 'hostname', 'binaryCaches'].includes(name)) {
      failAt(reader.lineOfField(name), `unknown field ${name} (cachix knows authToken, hostname and binaryCaches)`);
    }
  }
  const failField = (name: string) => (message: string) => failAt(reader.lineOfField(name), message);
  const authToken = textField(root.fields, 'authToken', failField('authToken'));
  const hostname = textField(root.fields, 'hostname', failField('hostname'));
  const binaryCaches: CachixDhallCache[] = [];
  const caches = root.fields.get('binaryCaches');
  if (caches !== undefined) {
    if (caches.kind !== 'list') failField('binaryCaches')('binaryCaches must be a list');
    for (const item of (caches as { items: Value[] }).items) {
      const fail = failField('binaryCaches');
      if (item.kind !== 'record') fail('each of binaryCaches must be a record { name = ..., secretKey = ... }');
      const fields = (item as { fields: Map<string, Value> }).fields;
      const names = [...fields.keys()].sort().join(',');
      if (names !== 'name,secretKey') fail(`each of binaryCaches must have exactly name and secretKey, not ${names || 'nothing'}`);
      const name = textField(fields, 'name', fail)!;
      const secretKey = textField(fields, 'secretKey', fail)!;
      registerSecret(secretKey.trim());
      binaryCaches.push({ name, secretKey });
    }
  }
  registerSecret(authToken);
  // cachix writes an empty token when none was set; it means "no token".
  return { path, authToken: authToken || undefined, hostname: hostname || undefined, binaryCaches };
}

/** Reads cachix's config; undefined when there is none. */
export async function loadCachixDhall(path: string): Promise<CachixDhallConfig | undefined> {
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read cachix's config ${path}: ${(error as Error).message}`);
  }
  return parseCachixDhall(source, path);
}

/**
 * cachix's config for a command that only falls back to it (for a token or key its own config
 * lacks): one that cannot be read or parsed is handed back as the problem, not thrown, so a
 * command that turns out not to need it goes on; one that does need it throws the problem then.
 */
export async function loadCachixDhallFallback(path: string): Promise<{ config?: CachixDhallConfig | undefined; problem?: UserError }> {
  try {
    return { config: await loadCachixDhall(path) };
  } catch (error) {
    if (error instanceof UserError) return { problem: error };
    throw error;
  }
}

/** A cache's key as cachix finds it: the last entry of that name wins (Command/Push.hs). */
export function cachixDhallSecretKey(dhall: CachixDhallConfig | undefined, cacheName: string): string | undefined {
  return dhall?.binaryCaches.filter((cache) => cache.name === cacheName).at(-1)?.secretKey;
}
