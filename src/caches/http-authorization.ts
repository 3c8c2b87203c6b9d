// The credentials of an HTTP cache, found as Nix's curl finds them, and its URL without them.
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { findNetrcCredentials, parseNetrc } from '../netrc.js';
import { registerSecret } from '../redact.js';
import { isLoopbackHost } from './credentials.js';

export const DEFAULT_NETRC_FILE = '/etc/nix/netrc';

/** The URL without user:password, ending in '/' so relative names resolve under it. */
export function publicBaseUrl(url: URL): URL {
  const base = new URL(url.href);
  base.username = '';
  base.password = '';
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

/** The user:password given in the cache URL; the password is a secret from now on. */
export function userInfoOf(url: URL): { login: string; password: string } | undefined {
  if (url.password) registerSecret(decodeURIComponent(url.password));
  return url.username ? { login: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : undefined;
}

export interface HttpCredentialSources {
  token?: string | undefined;
  /** user:password given in the cache URL. */
  userInfo?: { login: string; password: string } | undefined;
  netrcFile?: string | undefined;
  /** The cache's URL without credentials. */
  base: URL;
  description: string;
  warn?: ((line: string) => void) | undefined;
}

/** Bearer token if given; else user:password in the URL; else the netrc entry for the host; else none. */
export async function authorizationHeader(sources: HttpCredentialSources): Promise<string | undefined> {
  const header = await findAuthorization(sources);
  if (header && sources.base.protocol === 'http:' && !isLoopbackHost(sources.base.hostname)) {
    sources.warn?.(`warning: credentials for ${sources.description} go over plain http, readable by anyone on the way; use https`);
  }
  return header;
}

async function findAuthorization(sources: HttpCredentialSources): Promise<string | undefined> {
  if (sources.token) return `Bearer ${sources.token}`;
  let credentials = sources.userInfo;
  if (!credentials) {
    const netrcFile = sources.netrcFile ?? DEFAULT_NETRC_FILE;
    const text = await readFile(netrcFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      // No netrc file is the usual case: Nix goes on without credentials, so do we.
      if (error.code === 'ENOENT') return '';
      throw new UserError(`cannot read the netrc file ${netrcFile}: ${error.message}`, 'check its permissions, or set netrc-file');
    });
    credentials = findNetrcCredentials(parseNetrc(text), sources.base.hostname);
  }
  if (!credentials) return undefined;
  registerSecret(credentials.password);
  return `Basic ${Buffer.from(`${credentials.login}:${credentials.password}`).toString('base64')}`;
}
