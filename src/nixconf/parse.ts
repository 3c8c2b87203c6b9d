import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';

// nix.conf read as Nix 2.8 reads it (libutil/config.cc applyConfig): a `#` anywhere ends the
// line, tokens are split on spaces, tabs and CR, a line is `name = value...` (the `=` must be its
// own token), or `include PATH` / `!include PATH` (relative to the including file; `!include`
// tolerates a missing file). There are no continuation lines.

export interface NixConfLine {
  /** 1-based line number in its file. */
  line: number;
  kind: 'setting' | 'include';
  name: string;
  /** The value tokens; Nix joins them with single spaces. */
  values: string[];
  /** For includes: the absolute path and whether a missing file is fine (`!include`). */
  includePath?: string;
  optional?: boolean;
}

export interface NixConfFile {
  path: string;
  lines: NixConfLine[];
}

/** One setting assignment, with where it came from, after includes are followed. */
export interface NixConfAssignment {
  name: string;
  values: string[];
  file: string;
  line: number;
}

const WHITESPACE = /[ \t\n\r]+/;

/** The part of a raw line Nix reads: everything before the first `#`. */
export function contentOf(rawLine: string): string {
  const hash = rawLine.indexOf('#');
  return hash === -1 ? rawLine : rawLine.slice(0, hash);
}

export function tokensOf(rawLine: string): string[] {
  return contentOf(rawLine)
    .split(WHITESPACE)
    .filter((token) => token !== '');
}

/** Parses one file's text without following includes; throws a UserError naming file and line. */
export function parseNixConfText(text: string, path: string): NixConfFile {
  const lines: NixConfLine[] = [];
  text.split('\n').forEach((rawLine, index) => {
    const tokens = tokensOf(rawLine);
    if (tokens.length === 0) return;
    const line = index + 1;
    const illegal = (): UserError =>
      new UserError(
        `${path} line ${line}: Nix cannot read '${contentOf(rawLine).trim()}' (expected 'name = value')`,
        'fix or remove that line first; Nix itself refuses this file',
      );
    if (tokens.length < 2) throw illegal();
    if (tokens[0] === 'include' || tokens[0] === '!include') {
      if (tokens.length !== 2) throw illegal();
      lines.push({
        line,
        kind: 'include',
        name: tokens[0],
        values: [tokens[1]!],
        includePath: resolve(dirname(path), tokens[1]!),
        optional: tokens[0] === '!include',
      });
      return;
    }
    if (tokens[1] !== '=') throw illegal();
    lines.push({ line, kind: 'setting', name: tokens[0]!, values: tokens.slice(2) });
  });
  return { path, lines };
}

/** The file's text, or undefined when it does not exist; other read errors are the user's to fix. */
export async function readNixConfText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UserError(`cannot read ${path}: ${code ?? (error as Error).message}`, 'check that the file is readable by this user');
  }
}

/**
 * A file and everything it includes, as the ordered assignments Nix applies. Nix 2.8 applies
 * each line as it reads it, an include in its place (checked against `nix show-config`); newer
 * Nix applies a file's own settings after its includes, which differs only for a setting that
 * is assigned both before an include and in it.
 */
export async function loadNixConf(path: string, seen: string[] = []): Promise<NixConfAssignment[]> {
  if (seen.includes(path)) throw new UserError(`${path} includes itself (through ${seen.join(' -> ')})`);
  const text = await readNixConfText(path);
  if (text === undefined) return [];
  const file = parseNixConfText(text, path);
  const assignments: NixConfAssignment[] = [];
  for (const line of file.lines) {
    if (line.kind === 'include') {
      const target = line.includePath!;
      if ((await readNixConfText(target)) === undefined) {
        if (line.optional) continue;
        throw new UserError(
          `${path} line ${line.line}: included file ${target} not found`,
          `create it, or write '!include' to make it optional`,
        );
      }
      assignments.push(...(await loadNixConf(target, [...seen, path])));
    } else {
      assignments.push({ name: line.name, values: line.values, file: path, line: line.line });
    }
  }
  return assignments;
}

/** Nix's old names for settings we read and write (an alias also takes the `extra-` prefix). */
const ALIASES: Record<string, string> = {
  'binary-caches': 'substituters',
  'binary-cache-public-keys': 'trusted-public-keys',
  'trusted-binary-caches': 'trusted-substituters',
};

export function canonicalName(name: string): { name: string; extra: boolean } {
  const extra = name.startsWith('extra-');
  const bare = extra ? name.slice('extra-'.length) : name;
  return { name: ALIASES[bare] ?? bare, extra };
}

export interface SettingValue {
  value: string;
  file: string;
  line: number;
}

/**
 * The value of a list setting after applying assignments in order: `name = ...` replaces,
 * `extra-name = ...` appends. `initial` is Nix's default (e.g. trusted-users = root).
 */
export function effectiveValues(assignments: NixConfAssignment[], setting: string, initial: SettingValue[] = []): SettingValue[] {
  let values = [...initial];
  for (const assignment of assignments) {
    const { name, extra } = canonicalName(assignment.name);
    if (name !== setting) continue;
    const added = assignment.values.map((value) => ({ value, file: assignment.file, line: assignment.line }));
    values = extra ? [...values, ...added] : added;
  }
  return values;
}
