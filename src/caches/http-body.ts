// Reading what an HTTP cache server answers: bodies with a size limit and the words for a cut-off
// one, and what an answer that is no cache file (an HTML page) is called.
import type { Dispatcher } from 'undici';
import { UserError } from '../errors.js';
import { looksLikeMarkup } from '../nix/cache-info.js';
import { readLimited } from '../util/read-limited.js';

export function readBody(body: Dispatcher.ResponseData['body'], limit: number, what = 'a response from the cache'): Promise<string> {
  return readLimited(
    body,
    limit,
    () => new UserError(`${what} is larger than ${limit} bytes, which no real one is`, 'check what the server serves at that URL'),
    // A body that stalls (bodyTimeout) or is cut off: say what was being read, not just undici's words.
    (error, bytesRead) =>
      new UserError(
        `reading ${what} failed after ${bytesRead} bytes: ${(error as Error).message}`,
        'the server stopped sending; try again later, or check the server',
        1,
      ),
  );
}

export function isHtml(contentType: string | string[] | undefined): boolean {
  return /^\s*(text\/html|application\/xhtml)/i.test(String(contentType ?? ''));
}

/** What came instead of a cache file, in a few words (never the page itself). */
export function describeNotCacheFile(text: string, contentType: string | string[] | undefined): string {
  if (isHtml(contentType) || /^\s*<(!doctype html|html)/i.test(text)) return 'an HTML page';
  if (looksLikeMarkup(text)) return 'markup, not a cache file';
  return `not one (no StoreDir, WantMassQuery or Priority line in ${text.length} bytes)`;
}
