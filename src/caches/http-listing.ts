// Reading a folder listing from an HTTP cache server: WebDAV PROPFIND (RFC 4918 multistatus, as
// nginx's dav-ext module, Apache mod_dav, rclone and caddy-webdav answer) or nginx's
// `autoindex_format json`. Pure: text in, files out.
import { UserError } from '../errors.js';
import type { ListedFile } from './cache.js';

/** A listing of a folder of 100 000 files is ~50 MB of XML; anything far larger is not a listing. */
export const MAX_LISTING_BYTES = 512 * 1024 * 1024;

/** Asks only for what a listing needs, so servers need not compute ETags or content types. */
export const PROPFIND_BODY =
  '<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:getlastmodified/><D:resourcetype/></D:prop></D:propfind>\n';

// Namespace prefixes differ between servers (D:, d:, lp1:, none), so elements are matched by local name.
function element(name: string, flags = ''): RegExp {
  return new RegExp(`<(?:[\\w.-]+:)?${name}\\b[^>]*?(?:/>|>([\\s\\S]*?)</(?:[\\w.-]+:)?${name}\\s*>)`, flags);
}
const RESPONSE = element('response', 'g');
const HREF = element('href');
const LENGTH = element('getcontentlength');
const MODIFIED = element('getlastmodified');
const COLLECTION = /<(?:[\w.-]+:)?collection\b/;

function decodeXmlText(text: string): string {
  return text
    .trim()
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&amp;/g, '&');
}

/** The name of an entry directly inside the folder at `folderPath`, or undefined for anything else. */
function nameInFolder(href: string, folderUrl: URL): string | undefined {
  let path: string;
  try {
    path = new URL(href, folderUrl).pathname;
  } catch {
    return undefined;
  }
  const folderPath = folderUrl.pathname.endsWith('/') ? folderUrl.pathname : `${folderUrl.pathname}/`;
  if (!path.startsWith(folderPath)) {
    // Some servers encode differently from how we asked (%2B vs +): compare decoded paths too.
    const decodedPath = safeDecode(path);
    const decodedFolder = safeDecode(folderPath);
    if (decodedPath === undefined || decodedFolder === undefined || !decodedPath.startsWith(decodedFolder)) return undefined;
    return plainName(decodedPath.slice(decodedFolder.length));
  }
  const rest = safeDecode(path.slice(folderPath.length));
  return rest === undefined ? undefined : plainName(rest);
}

function plainName(rest: string): string | undefined {
  return rest === '' || rest.includes('/') ? undefined : rest;
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** The files (not folders) of a `207 Multi-Status` answer to `PROPFIND` with `Depth: 1`. */
export function parsePropfindListing(xml: string, folderUrl: URL, folder: string): ListedFile[] {
  if (!/<(?:[\w.-]+:)?multistatus\b/.test(xml)) throw new Error('the PROPFIND answer is not a WebDAV multistatus document');
  const files: ListedFile[] = [];
  for (const match of xml.matchAll(RESPONSE)) {
    const body = match[1] ?? '';
    if (COLLECTION.test(body)) continue;
    const href = HREF.exec(body)?.[1];
    if (href === undefined) continue;
    const name = nameInFolder(decodeXmlText(href), folderUrl);
    if (name === undefined) continue;
    const length = Number(decodeXmlText(LENGTH.exec(body)?.[1] ?? '0'));
    const modified = new Date(decodeXmlText(MODIFIED.exec(body)?.[1] ?? ''));
    files.push({
      name: folder + name,
      size: Number.isFinite(length) ? length : 0,
      modified: Number.isNaN(modified.getTime()) ? new Date(0) : modified,
    });
  }
  return files;
}

const RESPONSE_END = /<\/(?:[\w.-]+:)?response\s*>/g;
const HREF_TEXT = /<(?:[\w.-]+:)?href\b[^>]*>([^<]*)</;

/**
 * Only the names of the files of a PROPFIND answer, for narinfo lookups: each response is cut at
 * its closing tag rather than matched whole, several times cheaper on a listing of ten thousand.
 */
export function propfindFileNames(xml: string, folderUrl: URL): string[] {
  if (!/<(?:[\w.-]+:)?multistatus\b/.test(xml)) throw new Error('the PROPFIND answer is not a WebDAV multistatus document');
  const folderPath = folderUrl.pathname.endsWith('/') ? folderUrl.pathname : `${folderUrl.pathname}/`;
  const names: string[] = [];
  let start = 0;
  for (const end of xml.matchAll(RESPONSE_END)) {
    const body = xml.slice(start, end.index);
    start = end.index + end[0].length;
    if (COLLECTION.test(body)) continue;
    const href = HREF_TEXT.exec(body)?.[1];
    if (href === undefined) continue;
    const name = plainHrefName(href, folderPath) ?? nameInFolder(decodeXmlText(href), folderUrl);
    if (name !== undefined) names.push(name);
  }
  return names;
}

/** A name nothing in it needs decoding or resolving (what nginx lists for a cache's files). */
const PLAIN_NAME = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/;

/**
 * The name in `href` when it is the folder's own path and a plain name (no entity, escape, dot
 * segment or slash), as nameInFolder would give it without parsing a URL per entry; undefined
 * for anything else, which nameInFolder then decides.
 */
function plainHrefName(href: string, folderPath: string): string | undefined {
  if (!href.startsWith(folderPath)) return undefined;
  const rest = href.slice(folderPath.length);
  return PLAIN_NAME.test(rest) ? rest : undefined;
}

interface AutoindexEntry {
  name?: unknown;
  type?: unknown;
  mtime?: unknown;
  size?: unknown;
}

/** The files of nginx's `autoindex_format json;` answer: `[{"name","type":"file","mtime","size"}, …]`. */
export function parseAutoindexJson(text: string, folder: string): ListedFile[] {
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    throw new Error('the folder listing is not JSON');
  }
  if (!Array.isArray(entries)) throw new Error('the folder listing is not a JSON array');
  return (entries as AutoindexEntry[])
    .filter((entry) => entry.type === 'file' && typeof entry.name === 'string' && !entry.name.includes('/'))
    .map((entry) => {
      const modified = new Date(String(entry.mtime));
      return {
        name: folder + String(entry.name),
        size: typeof entry.size === 'number' ? entry.size : 0,
        modified: Number.isNaN(modified.getTime()) ? new Date(0) : modified,
      };
    });
}

/** What a server that answers neither listing is told, in one line and a hint. */
export function cannotListError(description: string, tried: string): UserError {
  return new UserError(
    `${description} cannot list its files (${tried}), and info, pin, gc and delete need a listing`,
    'enable WebDAV PROPFIND on the server (nginx: load ngx_http_dav_ext_module from libnginx-mod-http-dav-ext and add `dav_ext_methods PROPFIND OPTIONS;`) or a JSON index (nginx: `autoindex on; autoindex_format json;`)',
  );
}
