/**
 * `text` as one word of a POSIX shell command line, for hints the user pastes: as it is when it
 * holds only characters no shell treats specially, else in single quotes (a space in a path, the
 * `?` and `&` of an s3:// URL).
 */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
