// The pin file kept in the cache itself, `pins/<NAME>.json`, so every client and every gc sees
// the same pins. One file per pin: two pins written at once never overwrite each other; two
// writers of the same pin at once are reconciled by reading back (pins.ts).
//
//   {
//     "format": "cachix-any-pin/1",
//     "name": "release",
//     "keep": { "revisions": 3 } | { "days": 30 } | { "forever": true },
//     "revisions": [ { "storePath": "/nix/store/…", "pinnedAt": "2026-11-26T12:00:00.000Z" }, … ]
//   }
//
// Revisions are oldest first. A pin's newest revision is always live, whatever `keep` says.
import { isStorePath } from '../nix/store-path.js';

export const PIN_FORMAT = 'cachix-any-pin/1';
export const PINS_FOLDER = 'pins/';

export type KeepPolicy = { revisions: number } | { days: number } | { forever: true };

export interface PinRevision {
  storePath: string;
  pinnedAt: Date;
}

export interface Pin {
  name: string;
  keep: KeepPolicy;
  revisions: PinRevision[];
}

const PIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** Why a pin name cannot be a file name in every backend, or undefined when it can. */
export function checkPinName(name: string): string | undefined {
  if (PIN_NAME.test(name)) return undefined;
  return 'a pin name is 1 to 128 letters, digits, dots, dashes, underscores or pluses, starting with a letter or digit';
}

export function pinFileName(name: string): string {
  return `${PINS_FOLDER}${name}.json`;
}

export function formatPin(pin: Pin): string {
  return (
    JSON.stringify(
      {
        format: PIN_FORMAT,
        name: pin.name,
        keep: pin.keep,
        revisions: pin.revisions.map((revision) => ({ storePath: revision.storePath, pinnedAt: revision.pinnedAt.toISOString() })),
      },
      null,
      2,
    ) + '\n'
  );
}

function parseKeep(value: unknown): KeepPolicy {
  const keep = value as Record<string, unknown> | null;
  if (keep && keep.forever === true) return { forever: true };
  if (keep && Number.isInteger(keep.revisions) && (keep.revisions as number) >= 1) return { revisions: keep.revisions as number };
  if (keep && Number.isInteger(keep.days) && (keep.days as number) >= 0) return { days: keep.days as number };
  throw new Error('its "keep" is none of {"revisions": N}, {"days": N}, {"forever": true}');
}

/** Reads a pin file; an error says what is wrong, so gc can refuse to guess what a pin protects. */
export function parsePin(text: string): Pin {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error('it is not JSON');
  }
  if (data?.format !== PIN_FORMAT) throw new Error(`its "format" is not "${PIN_FORMAT}"`);
  if (typeof data.name !== 'string' || checkPinName(data.name)) throw new Error('its "name" is not a pin name');
  if (!Array.isArray(data.revisions)) throw new Error('its "revisions" is not a list');
  const revisions = (data.revisions as Array<Record<string, unknown>>).map((revision, index) => {
    const storePath = revision?.storePath;
    const pinnedAt = new Date(String(revision?.pinnedAt));
    if (typeof storePath !== 'string' || !isStorePath(storePath)) throw new Error(`revision ${index + 1} has no valid storePath`);
    if (Number.isNaN(pinnedAt.getTime())) throw new Error(`revision ${index + 1} has no valid pinnedAt`);
    return { storePath, pinnedAt };
  });
  return { name: data.name, keep: parseKeep(data.keep), revisions };
}

/** The revisions `keep` still protects at `now`: the newest always, then as the policy says. */
export function liveRevisions(pin: Pin, now: Date): PinRevision[] {
  const { keep, revisions } = pin;
  if (revisions.length === 0) return [];
  let live: PinRevision[];
  if ('forever' in keep) live = revisions;
  else if ('revisions' in keep) live = revisions.slice(-keep.revisions);
  else live = revisions.filter((revision) => now.getTime() - revision.pinnedAt.getTime() <= keep.days * 86_400_000);
  const newest = revisions[revisions.length - 1]!;
  return live.includes(newest) ? live : [...live, newest];
}

/** The pin with `storePath` as its newest revision, and what `keep` no longer protects dropped. */
export function addRevision(existing: Pin | undefined, name: string, storePath: string, keep: KeepPolicy | undefined, now: Date): Pin {
  const pin: Pin = { name, keep: keep ?? existing?.keep ?? { forever: true }, revisions: [...(existing?.revisions ?? [])] };
  const newest = pin.revisions[pin.revisions.length - 1];
  if (newest?.storePath !== storePath) pin.revisions.push({ storePath, pinnedAt: now });
  pin.revisions = liveRevisions(pin, now);
  return pin;
}

/**
 * `existing` with the revision (`storePath`, `pinnedAt`) put in its place by date, as `keep`
 * decides; undefined when nothing changes (it is there already, or `keep` drops it).
 */
export function mergeRevision(existing: Pin, storePath: string, pinnedAt: Date, keep: KeepPolicy | undefined, now: Date): Pin | undefined {
  if (existing.revisions.some((revision) => revision.storePath === storePath)) return undefined;
  const revisions = [...existing.revisions, { storePath, pinnedAt }].sort((a, b) => a.pinnedAt.getTime() - b.pinnedAt.getTime());
  const pin: Pin = { name: existing.name, keep: keep ?? existing.keep, revisions };
  pin.revisions = liveRevisions(pin, now);
  return pin.revisions.some((revision) => revision.storePath === storePath) ? pin : undefined;
}
