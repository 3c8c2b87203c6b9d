// Where a cache is, as a user types it: a URL, or a directory. WHATWG URL parsing resolves
// `file:` and `file:./x` against `/` (so `/` itself became a cache) and turns `file://x/y` into a
// host name: only an absolute file URL says what the user meant.
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../errors.js';

const ABSOLUTE_FILE_URL = /^file:\/\/(localhost)?\//i;
const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

const FILE_URL_HINT = 'write file:///absolute/path (three slashes), or give the directory itself (./mycache, /srv/cache)';

/** Refuses a file URL that is not absolute, before URL parsing silently makes it so. */
export function checkFileUrlText(text: string): void {
  if (!/^file:/i.test(text) || ABSOLUTE_FILE_URL.test(text)) return;
  const host = /^file:\/\/([^/]+)/i.exec(text)?.[1];
  if (host)
    throw new UserError(
      `'${text}' names '${host}' as a host, not a directory: file URLs on this machine start with file:///`,
      FILE_URL_HINT,
    );
  throw new UserError(
    `'${text}' is not an absolute file URL: it would name a directory under / rather than the one you meant`,
    FILE_URL_HINT,
  );
}

/**
 * Where a cache name may also stand: a path that is plainly one (`/srv/cache`, `./cache`,
 * `../cache`). Anything else is a name, or a mistyped one, rather than a directory made by accident.
 */
export function looksLikeDirectory(text: string): boolean {
  return !HAS_SCHEME.test(text) && (text === '.' || text === '..' || /^(\.{1,2})?\//.test(text));
}

export interface DirectoryCache {
  url: string;
  /** One line for stderr when the path was relative, saying where it resolved to. */
  note?: string | undefined;
}

/** A directory given as a path, resolved against the current directory, as a file URL. */
export function directoryAsCacheUrl(path: string, cwd = process.cwd()): DirectoryCache {
  const url = pathToFileURL(resolve(cwd, path)).href;
  return { url, note: isAbsolute(path) ? undefined : `using the directory ${resolve(cwd, path)} (${url}) as the cache` };
}
