// Secrets must never reach a terminal or a CI log. Everything we print about errors passes
// through here: Nix secret keys (64-byte base64 after a name), bearer tokens, URL passwords and
// S3 secrets are replaced.

const registered = new Set<string>();

/** Remember a secret seen at run time (a token, a key) so it is cut from any output. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 8) registered.add(secret);
}

/** Forgets every registered secret: for a process that runs one command line after another (tests). */
export function forgetSecrets(): void {
  registered.clear();
}

export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of registered) out = out.split(secret).join('<redacted>');
  return redactSecretShapes(out);
}

/**
 * What looks like a secret wherever it appears, without the secrets registered at run time: for
 * results on stdout, where a command may print a secret it was asked for (generate-keypair's
 * bare key, once), but never a URL's password or a bearer token.
 */
export function redactSecretShapes(text: string): string {
  let out = text;
  // A Nix secret key: name:base64 of 64 bytes (88 characters with padding).
  out = out.replace(/([A-Za-z0-9._-]+:)[A-Za-z0-9+/]{86}==/g, '$1<redacted secret key>');
  out = out.replace(/(Bearer\s+)[^\s"']+/gi, '$1<redacted>');
  out = redactUrlPassword(out);
  out = out.replace(/((?:token|secret|password|X-Amz-Signature|Signature)=)[^&\s"']+/gi, '$1<redacted>');
  return out;
}

/** `scheme://user:password@host` with the password replaced, wherever it appears in `text`. */
export function redactUrlPassword(text: string): string {
  return text.replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1<redacted>@');
}
