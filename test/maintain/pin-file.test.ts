import { describe, expect, it } from 'vitest';
import { addRevision, checkPinName, formatPin, liveRevisions, parsePin } from '../../src/maintain/pin-file.js';

const path = (n: number): string =>
  `/nix/store/${String(n)
    .padStart(32, '0')
    .replace(/[eotu]/g, 'a')}-p${n}`;
const day = 86_400_000;

describe('pin files', () => {
  it('round-trip through the documented JSON format', () => {
    const pin = addRevision(undefined, 'release', path(1), { revisions: 2 }, new Date('2026-01-01T00:00:00Z'));
    const text = formatPin(pin);
    expect(JSON.parse(text)).toEqual({
      format: 'cachix-any-pin/1',
      name: 'release',
      keep: { revisions: 2 },
      revisions: [{ storePath: path(1), pinnedAt: '2026-01-01T00:00:00.000Z' }],
    });
    expect(parsePin(text)).toEqual(pin);
  });

  it('keep-revisions keeps the newest N; a new pin keeps forever; the same path twice is one revision', () => {
    let pin = addRevision(undefined, 'r', path(1), undefined, new Date(0));
    expect(pin.keep).toEqual({ forever: true });
    pin = addRevision(pin, 'r', path(1), undefined, new Date(day));
    expect(pin.revisions).toHaveLength(1);
    pin = addRevision(pin, 'r', path(2), { revisions: 2 }, new Date(2 * day));
    pin = addRevision(pin, 'r', path(3), undefined, new Date(3 * day));
    expect(pin.revisions.map((revision) => revision.storePath)).toEqual([path(2), path(3)]);
  });

  it('keep-days keeps recent revisions, and always the newest however old', () => {
    const pin = {
      name: 'd',
      keep: { days: 7 },
      revisions: [
        { storePath: path(1), pinnedAt: new Date(0) },
        { storePath: path(2), pinnedAt: new Date(day) },
      ],
    };
    expect(liveRevisions(pin, new Date(5 * day)).map((revision) => revision.storePath)).toEqual([path(1), path(2)]);
    expect(liveRevisions(pin, new Date(7.5 * day)).map((revision) => revision.storePath)).toEqual([path(2)]);
    expect(liveRevisions(pin, new Date(100 * day)).map((revision) => revision.storePath)).toEqual([path(2)]);
  });

  it('says what is wrong with a damaged pin file', () => {
    expect(() => parsePin('{')).toThrow('it is not JSON');
    expect(() => parsePin('{"format":"other"}')).toThrow('its "format" is not "cachix-any-pin/1"');
    expect(() => parsePin('{"format":"cachix-any-pin/1","name":"x","keep":{"forever":true},"revisions":[{"storePath":"/tmp/x"}]}')).toThrow(
      'revision 1 has no valid storePath',
    );
  });

  it('accepts only names that are safe file names on every backend', () => {
    expect(checkPinName('v1.2.3+build_4-rc')).toBeUndefined();
    for (const bad of ['', '../x', 'a/b', '.hidden', 'a b', 'x'.repeat(129)]) expect(checkPinName(bad)).toBeDefined();
  });
});
