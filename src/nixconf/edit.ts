import { canonicalName, contentOf, parseNixConfText, type NixConfLine } from './parse.js';

// Exact, additive edits of nix.conf text. We only ever add values to `extra-<setting>` lines (or
// add such a line), so the user's own `substituters` (and cache.nixos.org in it) always stay, and
// every other byte of the file is kept: comments, blank lines, ordering, CRLF line ends.

function lineEnding(text: string): string {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

function settingLines(text: string, path: string, setting: string): NixConfLine[] {
  // Parsing first also refuses a file Nix itself cannot read: we never edit one.
  return parseNixConfText(text, path).lines.filter((line) => line.kind === 'setting' && canonicalName(line.name).name === setting);
}

/** `raw` with `addition` put after the last value, before trailing blanks and any comment. */
function appendToLine(raw: string, addition: string): string {
  const content = contentOf(raw);
  const kept = content.replace(/[ \t\r]+$/, '');
  return kept + ' ' + addition + content.slice(kept.length) + raw.slice(content.length);
}

/**
 * Adds the values missing from `setting` in this file. Appends to the last `extra-<setting>` line
 * that comes after every plain `<setting>` line (Nix applies a file's lines in order, so an extra-
 * line before a plain one would be reset by it), or adds `extra-<setting> = ...` at the end.
 * Returns the same string when nothing is missing, so a second run changes no byte.
 */
export function addListValues(text: string, path: string, setting: string, values: readonly string[]): string {
  const lines = settingLines(text, path, setting);
  const present = new Set(lines.flatMap((line) => line.values));
  const missing = [...new Set(values)].filter((value) => !present.has(value));
  if (missing.length === 0) return text;
  const lastPlain = Math.max(0, ...lines.filter((line) => !canonicalName(line.name).extra).map((line) => line.line));
  const target = lines.filter((line) => canonicalName(line.name).extra && line.line > lastPlain).pop();
  if (target) {
    const rawLines = text.split('\n');
    rawLines[target.line - 1] = appendToLine(rawLines[target.line - 1]!, missing.join(' '));
    return rawLines.join('\n');
  }
  const eol = lineEnding(text);
  const separator = text === '' || text.endsWith('\n') ? '' : eol;
  return `${text}${separator}extra-${setting} = ${missing.join(' ')}${eol}`;
}

/** `raw` without the token `value` and the blanks before it; undefined when it is not there. */
function removeToken(raw: string, value: string): string | undefined {
  const content = contentOf(raw);
  const tokens = content.split(/([ \t\r]+)/);
  // Split with the capture group, texts sit at even indexes and blanks at odd ones; the first two
  // texts are the name and '='.
  let seen = 0;
  for (let index = 0; index < tokens.length; index += 2) {
    if (tokens[index] === '') continue;
    seen += 1;
    if (seen > 2 && tokens[index] === value) {
      tokens.splice(index - 1, 2);
      return tokens.join('') + raw.slice(content.length);
    }
  }
  return undefined;
}

export interface RemovalResult {
  text: string;
  removed: string[];
  /** Values still set on plain `<setting>` lines: the user's own, which we leave alone. */
  leftInPlainLines: { value: string; line: number }[];
}

/**
 * Undoes addListValues: drops exactly these values from `extra-<setting>` lines, and drops a line
 * left with no values and no comment (the line `use` created). Nothing else changes.
 */
export function removeListValues(text: string, path: string, setting: string, values: readonly string[]): RemovalResult {
  const lines = settingLines(text, path, setting);
  const rawLines = text.split('\n');
  const removed: string[] = [];
  const dropped = new Set<number>();
  for (const line of lines) {
    if (!canonicalName(line.name).extra) continue;
    let raw = rawLines[line.line - 1]!;
    let remaining = line.values.length;
    for (const value of values) {
      const edited = removeToken(raw, value);
      if (edited === undefined) continue;
      raw = edited;
      remaining -= 1;
      removed.push(value);
    }
    rawLines[line.line - 1] = raw;
    if (remaining === 0 && !raw.includes('#')) dropped.add(line.line - 1);
  }
  const leftInPlainLines = lines
    .filter((line) => !canonicalName(line.name).extra)
    .flatMap((line) => line.values.filter((value) => values.includes(value)).map((value) => ({ value, line: line.line })));
  const kept = rawLines.filter((_, index) => !dropped.has(index));
  return { text: kept.join('\n'), removed, leftInPlainLines };
}

/** The value a single-valued setting has in this file (last assignment wins), if any. */
export function singleValueInFile(text: string, path: string, setting: string): string | undefined {
  const line = settingLines(text, path, setting).pop();
  return line ? line.values.join(' ') : undefined;
}

/** Sets a single-valued setting only when the file does not set it yet. */
export function setIfAbsent(text: string, path: string, setting: string, value: string): string {
  if (singleValueInFile(text, path, setting) !== undefined) return text;
  const eol = lineEnding(text);
  const separator = text === '' || text.endsWith('\n') ? '' : eol;
  return `${text}${separator}${setting} = ${value}${eol}`;
}
