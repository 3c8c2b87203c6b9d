// The netrc file Nix's curl reads (`netrc-file`, default /etc/nix/netrc): `machine HOST login
// USER password SECRET` entries and one optional `default` entry, tokens separated by any
// whitespace, so an entry may span lines. One tokenizer serves reading credentials (caches) and
// exact edits (`use`/`remove`): both must agree on what a comment, a quoted token and an entry
// are, or an edit could change a line the reader never sees. No file access here.

export interface NetrcEntry {
  /** The host this entry is for; undefined for the `default` entry. */
  machine: string | undefined;
  login?: string | undefined;
  password?: string | undefined;
  account?: string | undefined;
}

export interface NetrcCredentials {
  login: string;
  password: string;
}

/** A token and where it stands in the text (quotes included), so an edit can replace it exactly. */
export interface NetrcToken {
  text: string;
  start: number;
  end: number;
}

/** An entry with the token range it spans: `machine`/`default` up to the next entry. */
export interface NetrcSpan {
  entry: NetrcEntry;
  first: number;
  last: number;
  /** Index of the token holding the password value, if the entry has one. */
  passwordToken?: number;
}

/** Splits into tokens as curl does: whitespace separates, "double quotes" may hold spaces, # starts a comment line. */
export function tokenizeNetrc(text: string): NetrcToken[] {
  const tokens: NetrcToken[] = [];
  let lineStart = 0;
  let inMacro = false;
  while (lineStart <= text.length) {
    const newline = text.indexOf('\n', lineStart);
    const lineEnd = newline === -1 ? text.length : newline;
    const line = text.slice(lineStart, lineEnd);
    if (inMacro) {
      // A macro definition runs to the next empty line; its body is not tokens.
      if (line.trim() === '') inMacro = false;
    } else if (!line.trimStart().startsWith('#')) {
      let index = 0;
      while (index < line.length) {
        while (index < line.length && /\s/.test(line[index]!)) index++;
        if (index >= line.length) break;
        const start = index;
        let value = '';
        if (line[index] === '"') {
          index++;
          while (index < line.length && line[index] !== '"') {
            if (line[index] === '\\' && index + 1 < line.length) index++;
            value += line[index];
            index++;
          }
          index++;
        } else {
          while (index < line.length && !/\s/.test(line[index]!)) index++;
          value = line.slice(start, index);
        }
        tokens.push({ text: value, start: lineStart + start, end: lineStart + Math.min(index, line.length) });
      }
      if (tokens.length >= 2 && tokens[tokens.length - 2]!.text === 'macdef') {
        tokens.splice(tokens.length - 2, 2);
        inMacro = true;
      }
    }
    if (newline === -1) break;
    lineStart = newline + 1;
  }
  return tokens;
}

/** The entries with their token ranges, as curl reads them. */
export function netrcSpans(tokens: readonly NetrcToken[]): NetrcSpan[] {
  const spans: NetrcSpan[] = [];
  let current: NetrcSpan | undefined;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!.text;
    switch (token) {
      case 'machine':
      case 'default':
        if (current) current.last = index - 1;
        current = {
          entry: { machine: token === 'machine' ? (tokens[index + 1]?.text ?? '') : undefined },
          first: index,
          last: tokens.length - 1,
        };
        if (token === 'machine') index++;
        spans.push(current);
        break;
      case 'login':
      case 'password':
      case 'account': {
        const value = tokens[++index];
        if (current && value !== undefined) {
          current.entry[token] = value.text;
          if (token === 'password') current.passwordToken = index;
        }
        break;
      }
      default:
        break; // Unknown tokens are skipped, as curl does.
    }
  }
  return spans;
}

export function parseNetrc(text: string): NetrcEntry[] {
  return netrcSpans(tokenizeNetrc(text)).map((span) => span.entry);
}

/** Host names compare case-insensitively, as curl compares them; ports are not part of the match. */
export function isNetrcEntryFor(entry: NetrcEntry, host: string): boolean {
  return entry.machine !== undefined && entry.machine.toLowerCase() === host.toLowerCase();
}

/** The credentials curl would send to `host`: the first `machine` entry for it, else the `default` entry. */
export function findNetrcCredentials(entries: readonly NetrcEntry[], host: string): NetrcCredentials | undefined {
  const entry =
    entries.find((candidate) => isNetrcEntryFor(candidate, host)) ?? entries.find((candidate) => candidate.machine === undefined);
  // cachix writes `machine HOST password TOKEN` with no login; curl then sends an empty user.
  if (!entry || (entry.login === undefined && entry.password === undefined)) return undefined;
  return { login: entry.login ?? '', password: entry.password ?? '' };
}
