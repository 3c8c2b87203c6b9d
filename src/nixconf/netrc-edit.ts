import { isNetrcEntryFor, netrcSpans, tokenizeNetrc, type NetrcSpan, type NetrcToken } from '../netrc.js';

// Exact edits of a netrc file (the one Nix's `netrc-file` names), for private caches: one
// `machine HOST password TOKEN` entry per host, every other entry and byte left as it was.
// The entry edited is the one curl would read for the host (netrc.ts's tokenizer and matching).

function findMachine(text: string, host: string): { tokens: NetrcToken[]; span: NetrcSpan } | undefined {
  const tokens = tokenizeNetrc(text);
  const span = netrcSpans(tokens).find((candidate) => isNetrcEntryFor(candidate.entry, host));
  return span ? { tokens, span } : undefined;
}

/** Adds `machine HOST password TOKEN`, or changes the password of that host's entry in place. */
export function setNetrcPassword(text: string, host: string, password: string): string {
  const found = findMachine(text, host);
  if (!found) {
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    return `${text}${separator}machine ${host} password ${password}\n`;
  }
  const { tokens, span } = found;
  if (span.passwordToken !== undefined) {
    const value = tokens[span.passwordToken]!;
    if (value.text === password) return text;
    return text.slice(0, value.start) + password + text.slice(value.end);
  }
  const hostToken = tokens[span.first + 1]!;
  return text.slice(0, hostToken.end) + ` password ${password}` + text.slice(hostToken.end);
}

/** Removes the whole entry of this host (with its line end when it sits on its own lines). */
export function removeNetrcMachine(text: string, host: string): string {
  const found = findMachine(text, host);
  if (!found) return text;
  const { tokens, span } = found;
  const start = tokens[span.first]!.start;
  const next = tokens[span.last + 1];
  if (next) return text.slice(0, start) + text.slice(next.start);
  // The last entry: drop it and the blanks after it, keeping the file's final newline.
  const before = text.slice(0, start);
  return before === '' || before.endsWith('\n') || !text.endsWith('\n') ? before : before.trimEnd() + '\n';
}

/** The password of this host's own entry (not the default entry), if it has one. */
export function netrcPassword(text: string, host: string): string | undefined {
  return findMachine(text, host)?.span.entry.password;
}
