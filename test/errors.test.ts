import { describe, expect, it } from 'vitest';
import { fsErrorToUser, UserError } from '../src/errors.js';

const failure = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: raw`), { code });

describe('fsErrorToUser: the one errno-to-advice mapper', () => {
  it('a full disk or quota names the place and its role, with the owner hint', () => {
    for (const code of ['ENOSPC', 'EDQUOT']) {
      const told = fsErrorToUser(failure(code), { path: '/srv/nar', role: 'where NARs wait', hints: { full: 'free some' } });
      expect(told).toBeInstanceOf(UserError);
      expect((told as UserError).message).toBe('no space left on the device holding /srv/nar, where NARs wait');
      expect((told as UserError).hint).toBe('free some');
    }
  });

  it('read-only and refused permission say so, with what was being done', () => {
    const place = { path: '/srv/cache', name: 'the cache at /srv/cache', doing: 'list' };
    expect((fsErrorToUser(failure('EROFS'), place) as UserError).message).toBe('the cache at /srv/cache is on a read-only file system');
    for (const code of ['EACCES', 'EPERM']) {
      const told = fsErrorToUser(failure(code), place) as UserError;
      expect(told.message).toBe('no permission to list the cache at /srv/cache');
      expect(told.hint).toBe('check its owner and mode, or run as a user who can write it');
    }
  });

  it('any other error is returned as it is', () => {
    const other = failure('EIO');
    expect(fsErrorToUser(other, { path: '/x' })).toBe(other);
  });
});
