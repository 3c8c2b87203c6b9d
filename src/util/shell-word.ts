// A word a user can paste into a shell as it is printed: hints name the user's cache this way.

/** `text` unchanged when the shell reads it as one word as it is, else in single quotes. */
export function shellWord(text: string): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
