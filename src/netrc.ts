/**
 * The netrc file Nix's curl reads (`netrc-file`, default /etc/nix/netrc): `machine HOST login
 * USER password SECRET` entries and one optional `default` entry, tokens separated by any
 * whitespace, so an entry may span lines. Parsing only; no file access here.
 */
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

/** Splits into tokens as curl does: whitespace separates, "double quotes" may hold spaces, # starts a comment line. */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const line = lines[lineIndex]!;
    if (line.trimStart().startsWith('#')) continue;
    let index = 0;
    while (index < line.length) {
      while (index < line.length && /\s/.test(line[index]!)) index++;
      if (index >= line.length) break;
      if (line[index] === '"') {
        let token = '';
        index++;
        while (index < line.length && line[index] !== '"') {
          if (line[index] === '\\' && index + 1 < line.length) index++;
          token += line[index];
          index++;
        }
        index++;
        tokens.push(token);
      } else {
        const start = index;
        while (index < line.length && !/\s/.test(line[index]!)) index++;
        tokens.push(line.slice(start, index));
      }
    }
    // A macro definition runs to the next empty line; its body is not tokens.
    if (tokens.length >= 2 && tokens[tokens.length - 2] === 'macdef') {
      tokens.splice(tokens.length - 2, 2);
      while (lineIndex + 1 < lines.length && lines[lineIndex + 1]!.trim() !== '') lineIndex++;
    }
  }
  return tokens;
}

export function parseNetrc(text: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  const tokens = tokenize(text);
  let current: NetrcEntry | undefined;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    switch (token) {
      case 'machine':
        current = { machine: tokens[++index] ?? '' };
        entries.push(current);
        break;
      case 'default':
        current = { machine: undefined };
        entries.push(current);
        break;
      case 'login':
      case 'password':
      case 'account': {
        const value = tokens[++index];
        if (current && value !== undefined) current[token] = value;
        break;
      }
      default:
        break; // Unknown tokens are skipped, as curl does.
    }
  }
  return entries;
}

/**
 * The credentials curl would send to `host`: the first `machine` entry for it (host names
 * compare case-insensitively, ports are not part of the match), else the `default` entry.
 */
export function findNetrcCredentials(entries: readonly NetrcEntry[], host: string): NetrcCredentials | undefined {
  const wanted = host.toLowerCase();
  const entry =
    entries.find((candidate) => candidate.machine !== undefined && candidate.machine.toLowerCase() === wanted) ??
    entries.find((candidate) => candidate.machine === undefined);
  // cachix writes `machine HOST password TOKEN` with no login; curl then sends an empty user.
  if (!entry || (entry.login === undefined && entry.password === undefined)) return undefined;
  return { login: entry.login ?? '', password: entry.password ?? '' };
}
