// Untrusted text (from a server, a file, a store path name) made safe to print to a terminal:
// control characters, which could be escape sequences, are shown as \xNN.

export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
