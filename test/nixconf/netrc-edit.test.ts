import { describe, expect, it } from 'vitest';
import { findNetrcCredentials, parseNetrc } from '../../src/netrc.js';
import { netrcPassword, removeNetrcMachine, setNetrcPassword } from '../../src/nixconf/netrc-edit.js';

const OTHERS = 'machine github.com login me password gh-token\n\ndefault login anonymous password x\n';

describe('netrc edits', () => {
  it('adds an entry beside the others, which netrc.ts then finds', () => {
    const text = setNetrcPassword('machine github.com login me password gh-token\n', 'private.example', 'secret-1');
    expect(text).toBe('machine github.com login me password gh-token\nmachine private.example password secret-1\n');
    const entries = parseNetrc(text);
    // cachix's own format: no login, the token as password (curl sends an empty user name).
    expect(entries.find((entry) => entry.machine === 'private.example')?.password).toBe('secret-1');
    expect(findNetrcCredentials(entries, 'github.com')?.password).toBe('gh-token');
  });

  it('changes only the password of an existing entry, and is idempotent', () => {
    const text = 'machine private.example login cachix password old # note\nmachine b password c\n';
    const changed = setNetrcPassword(text, 'private.example', 'new');
    expect(changed).toBe('machine private.example login cachix password new # note\nmachine b password c\n');
    expect(setNetrcPassword(changed, 'private.example', 'new')).toBe(changed);
    expect(netrcPassword(changed, 'private.example')).toBe('new');
  });

  it('remove undoes add exactly, wherever the entry sits', () => {
    for (const text of ['', OTHERS, 'machine a password b\n', 'machine a password b']) {
      expect(removeNetrcMachine(setNetrcPassword(text, 'private.example', 's'), 'private.example')).toBe(
        text.endsWith('\n') || text === '' ? text : `${text}\n`,
      );
    }
    const middle = 'machine a password 1\nmachine private.example password s\nmachine c password 3\n';
    expect(removeNetrcMachine(middle, 'private.example')).toBe('machine a password 1\nmachine c password 3\n');
    expect(removeNetrcMachine(OTHERS, 'absent.example')).toBe(OTHERS);
  });

  it('does not take a password from a different host or the default entry', () => {
    expect(netrcPassword(OTHERS, 'private.example')).toBeUndefined();
  });

  it('leaves a commented-out entry alone and edits the live one, as curl reads them', () => {
    const text = '# machine private.example password old-commented\nmachine private.example password live\n';
    const changed = setNetrcPassword(text, 'private.example', 'new');
    expect(changed).toBe('# machine private.example password old-commented\nmachine private.example password new\n');
    expect(findNetrcCredentials(parseNetrc(changed), 'private.example')?.password).toBe('new');
    const onlyComment = '# machine private.example password old-commented\n';
    expect(setNetrcPassword(onlyComment, 'private.example', 'new')).toBe(`${onlyComment}machine private.example password new\n`);
  });

  it('finds an entry whose host differs only in case, instead of adding one the reader never picks', () => {
    const text = 'machine Cache.Example.com password old\n';
    const changed = setNetrcPassword(text, 'cache.example.com', 'new');
    expect(changed).toBe('machine Cache.Example.com password new\n');
    expect(findNetrcCredentials(parseNetrc(changed), 'cache.example.com')?.password).toBe('new');
    expect(removeNetrcMachine(changed, 'cache.example.com')).toBe('');
  });

  it('replaces a quoted password whole, quotes included', () => {
    const changed = setNetrcPassword('machine a.example password "old secret"\n', 'a.example', 'new');
    expect(changed).toBe('machine a.example password new\n');
  });
});
