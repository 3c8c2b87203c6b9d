import { describe, expect, it } from 'vitest';
import { planParts, S3_LIMITS } from '../../src/caches/part-plan.js';
import { UserError } from '../../src/errors.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;
/** Our S3 defaults: 16 MiB parts, 4 at once (64 MiB of parts in memory per NAR). */
const S3_DEFAULTS = { preferredPartSize: 16 * MIB, preferredPartsInFlight: 4 };
/** Nix's own S3 store: 5 MiB parts, which cap a NAR at 48.8 GiB. */
const NIX_PARTS = { preferredPartSize: 5 * MIB, preferredPartsInFlight: 4 };

describe('multipart part sizes chosen from the NAR size', () => {
  it('the preferred part size while the NAR fits in 10,000 of them, up to the last byte', () => {
    expect(planParts(0, S3_DEFAULTS)).toEqual({ partSize: 16 * MIB, partCount: 1, partsInFlight: 4 });
    expect(planParts(16 * MIB, S3_DEFAULTS)).toEqual({ partSize: 16 * MIB, partCount: 1, partsInFlight: 4 });
    expect(planParts(16 * MIB + 1, S3_DEFAULTS)).toEqual({ partSize: 16 * MIB, partCount: 2, partsInFlight: 4 });
    expect(planParts(10_000 * 16 * MIB, S3_DEFAULTS)).toEqual({ partSize: 16 * MIB, partCount: 10_000, partsInFlight: 4 });
  });

  it('one byte more than 10,000 preferred parts: the next whole MiB, still at most 10,000 parts', () => {
    const plan = planParts(10_000 * 16 * MIB + 1, S3_DEFAULTS);
    expect(plan.partSize).toBe(17 * MIB);
    expect(plan.partCount).toBeLessThanOrEqual(S3_LIMITS.maxParts);
    // 17 MiB parts: three fit in the 64 MiB four preferred parts would hold.
    expect(plan.partsInFlight).toBe(3);
  });

  it("Nix's 5 MiB parts stop at 48.8 GiB; a 100 GiB NAR gets 11 MiB parts", () => {
    expect(planParts(10_000 * 5 * MIB, NIX_PARTS).partSize).toBe(5 * MIB);
    const plan = planParts(100 * GIB, NIX_PARTS);
    expect(plan).toEqual({ partSize: 11 * MIB, partCount: Math.ceil((100 * GIB) / (11 * MIB)), partsInFlight: 1 });
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
  });

  it("S3's largest object, 5 TiB, fits in 10,000 parts with one part in memory at a time", () => {
    const plan = planParts(5 * TIB, S3_DEFAULTS);
    expect(plan.partSize).toBe(525 * MIB);
    expect(plan.partCount).toBe(Math.ceil((5 * TIB) / (525 * MIB)));
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
    expect(plan.partSize).toBeLessThanOrEqual(S3_LIMITS.maxPartSize);
    expect(plan.partsInFlight).toBe(1);
  });

  it('a NAR over 5 TiB is refused before any byte goes up, naming the limit', () => {
    expect(() => planParts(5 * TIB + 1, S3_DEFAULTS)).toThrow(UserError);
    expect(() => planParts(5 * TIB + 1, S3_DEFAULTS)).toThrow(/larger than S3's object limit of 5 TiB/);
  });

  it('a forced part limit: the parts grow to fit, and parts beyond 5 GiB are refused', () => {
    expect(planParts(36 * MIB, { ...S3_DEFAULTS, maxParts: 2 })).toEqual({ partSize: 18 * MIB, partCount: 2, partsInFlight: 3 });
    expect(planParts(36 * MIB + 1, { ...S3_DEFAULTS, maxParts: 2 }).partSize).toBe(19 * MIB);
    expect(() => planParts(11 * GIB, { ...S3_DEFAULTS, maxParts: 2 })).toThrow(/needs parts larger than S3's 5 GiB/);
  });

  it("the cachix API's defaults: 32 MiB parts, 4 at once", () => {
    const cachix = { preferredPartSize: 32 * MIB, preferredPartsInFlight: 4 };
    expect(planParts(320_000 * MIB, cachix)).toEqual({ partSize: 32 * MIB, partCount: 10_000, partsInFlight: 4 });
    expect(planParts(320_000 * MIB + 1, cachix)).toMatchObject({ partSize: 33 * MIB, partsInFlight: 3 });
  });
});
