/**
 * Exact edits of a netrc file (the one Nix's `netrc-file` names), for private caches: one
 * `machine HOST password TOKEN` entry per host, every other entry and byte left as it was.
 * Reading credentials is netrc.ts's job; this file only writes.
 */

interface Token {
  text: string;
  start: number;
  end: number;
}

function tokenize(text: string): Token[] {
  return [...text.matchAll(/\S+/g)].map((match) => ({ text: match[0], start: match.index, end: match.index + match[0].length }));
}

/** The tokens of the `machine HOST` entry: from `machine` up to the next `machine` or `default`. */
function findMachine(tokens: Token[], host: string): { first: number; last: number } | undefined {
  for (let index = 0; index < tokens.length - 1; index += 1) {
    if (tokens[index]!.text !== 'machine' || tokens[index + 1]!.text !== host) continue;
    let last = index + 1;
    while (last + 1 < tokens.length && tokens[last + 1]!.text !== 'machine' && tokens[last + 1]!.text !== 'default') last += 1;
    return { first: index, last };
  }
  return undefined;
}

/** Adds `machine HOST password TOKEN`, or changes the password of that host's entry in place. */
export function setNetrcPassword(text: string, host: string, password: string): string {
  const tokens = tokenize(text);
  const entry = findMachine(tokens, host);
  if (!entry) {
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    return `${text}${separator}machine ${host} password ${password}\n`;
  }
  for (let index = entry.first + 2; index < entry.last; index += 1) {
    if (tokens[index]!.text === 'password') {
      const value = tokens[index + 1]!;
      if (value.text === password) return text;
      return text.slice(0, value.start) + password + text.slice(value.end);
    }
  }
  const hostToken = tokens[entry.first + 1]!;
  return text.slice(0, hostToken.end) + ` password ${password}` + text.slice(hostToken.end);
}

/** Removes the whole entry of this host (with its line end when it sits on its own lines). */
export function removeNetrcMachine(text: string, host: string): string {
  const tokens = tokenize(text);
  const entry = findMachine(tokens, host);
  if (!entry) return text;
  const start = tokens[entry.first]!.start;
  const next = tokens[entry.last + 1];
  if (next) return text.slice(0, start) + text.slice(next.start);
  // The last entry: drop it and the blanks after it, keeping the file's final newline.
  const before = text.slice(0, start);
  return before === '' || before.endsWith('\n') || !text.endsWith('\n') ? before : before.trimEnd() + '\n';
}

/** The password of this host's own entry (not the default entry), if it has one. */
export function netrcPassword(text: string, host: string): string | undefined {
  const tokens = tokenize(text);
  const entry = findMachine(tokens, host);
  if (!entry) return undefined;
  for (let index = entry.first + 2; index < entry.last; index += 1) {
    if (tokens[index]!.text === 'password') return tokens[index + 1]!.text;
  }
  return undefined;
}
