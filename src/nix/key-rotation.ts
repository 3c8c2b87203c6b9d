/** The name of the key that replaces `name` in a rotation: NAME-1 -> NAME-2; NAME -> NAME-2. */
export function nextKeyName(name: string): string {
  const match = /^(.*)-(\d+)$/.exec(name);
  return match ? `${match[1]}-${Number(match[2]) + 1}` : `${name}-2`;
}
