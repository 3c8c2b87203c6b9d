import { describe, expect, it } from 'vitest';
import { parseAutoindexJson, parsePropfindListing, propfindFileNames } from '../../src/caches/http-listing.js';

// As nginx's dav-ext module answers (checked against libnginx-mod-http-dav-ext on this machine by
// test/commands/gc.test.ts); the second shape is Apache mod_dav's, with other prefixes.
const NGINX = `<?xml version="1.0" encoding="utf-8" ?>
<D:multistatus xmlns:D="DAV:">
<D:response>
<D:href>/c/nar/</D:href>
<D:propstat><D:prop><D:getlastmodified>Thu, 26 Nov 2026 12:00:00 GMT</D:getlastmodified><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response>
<D:href>/c/nar/0abc.nar.zst</D:href>
<D:propstat><D:prop><D:getcontentlength>1234</D:getcontentlength><D:getlastmodified>Thu, 26 Nov 2026 12:00:01 GMT</D:getlastmodified><D:resourcetype></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response>
<D:href>/c/nar/sub/</D:href>
<D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
</D:multistatus>`;

const APACHE = `<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:lp1="DAV:">
<d:response><d:href>http://host/c/a%2Bb.narinfo</d:href><d:propstat><d:prop>
<lp1:resourcetype/><lp1:getcontentlength>42</lp1:getcontentlength><lp1:getlastmodified>Wed, 25 Nov 2026 10:00:00 GMT</lp1:getlastmodified>
</d:prop></d:propstat></d:response>
<d:response><d:href>/c/x&amp;y</d:href><d:propstat><d:prop><lp1:resourcetype/></d:prop></d:propstat></d:response>
</d:multistatus>`;

describe('PROPFIND listings', () => {
  it('nginx dav-ext: files only, with sizes and dates, named from the cache root', () => {
    expect(parsePropfindListing(NGINX, new URL('http://host/c/nar/'), 'nar/')).toEqual([
      { name: 'nar/0abc.nar.zst', size: 1234, modified: new Date('2026-11-26T12:00:01Z') },
    ]);
  });

  it('other prefixes, absolute hrefs, percent-encoding and XML entities', () => {
    expect(parsePropfindListing(APACHE, new URL('http://host/c/'), '')).toEqual([
      { name: 'a+b.narinfo', size: 42, modified: new Date('2026-11-25T10:00:00Z') },
      { name: 'x&y', size: 0, modified: new Date(0) },
    ]);
  });

  it("the names for lookups are the full parse's names, for plain names and every other shape", () => {
    const hrefs = [
      '/c/0abc.narinfo',
      '/c/a+b_c-d.narinfo',
      'http://host/c/abs.narinfo',
      '/c/enc%2Bode.narinfo',
      '/c/x&amp;y',
      '/c/nar/deeper.nar',
      '/c/.hidden',
      '/c/./dot.narinfo',
      '/c/../up.narinfo',
      '/other/c.narinfo',
      ' /c/spaced.narinfo ',
      '/c/',
    ];
    const xml = `<D:multistatus xmlns:D="DAV:">${hrefs
      .map((href) => `<D:response><D:href>${href}</D:href><D:propstat><D:prop><D:resourcetype/></D:prop></D:propstat></D:response>`)
      .join('\n')}</D:multistatus>`;
    const folder = new URL('http://host/c/');
    const names = propfindFileNames(xml, folder);
    expect(names).toEqual(parsePropfindListing(xml, folder, '').map((file) => file.name));
    expect(names).toEqual([
      '0abc.narinfo',
      'a+b_c-d.narinfo',
      'abs.narinfo',
      'enc+ode.narinfo',
      'x&y',
      '.hidden',
      'dot.narinfo',
      'spaced.narinfo',
    ]);
  });

  it('refuses an answer that is not a multistatus', () => {
    expect(() => parsePropfindListing('<html></html>', new URL('http://host/'), '')).toThrow('not a WebDAV multistatus');
  });
});

describe('nginx autoindex_format json', () => {
  it('files only', () => {
    const json = JSON.stringify([
      { name: 'nar', type: 'directory', mtime: 'Thu, 26 Nov 2026 12:00:00 GMT' },
      { name: 'a.narinfo', type: 'file', mtime: 'Thu, 26 Nov 2026 12:00:00 GMT', size: 9 },
    ]);
    expect(parseAutoindexJson(json, '')).toEqual([{ name: 'a.narinfo', size: 9, modified: new Date('2026-11-26T12:00:00Z') }]);
  });
});
