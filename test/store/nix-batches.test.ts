// Nix asked about many paths at once (runNixBatched): from 1,000 paths on the query is split in
// calls run side by side; every batch's answer is taken, in order, and one invalid path in any
// batch fails the whole query naming that path.
import { beforeAll, describe, expect, it } from 'vitest';
import { queryClosure } from '../../src/store/closure.js';
import { queryPathInfo, queryValidPaths } from '../../src/store/path-info.js';
import { buildTinyClosure, type TinyClosure } from '../helpers/tiny-paths.js';

const INVALID = '/nix/store/00000000000000000000000000000000-nix-batches-missing';

describe('Nix queries of more than a thousand paths', () => {
  let tiny: TinyClosure;
  beforeAll(async () => {
    tiny = await buildTinyClosure(1100, 'nix-batches');
  });

  it('answer for every path, whichever call asked about it', async () => {
    const valid = await queryValidPaths([...tiny.leaves, INVALID]);
    expect(valid).toEqual(tiny.leaves);
    const infos = await queryPathInfo(tiny.leaves);
    expect(infos.map((info) => info.path).sort()).toEqual([...tiny.leaves].sort());
    expect((await queryClosure(tiny.leaves)).paths.sort()).toEqual([...tiny.leaves].sort());
  });

  it('one invalid path in the last call fails the query, naming it', async () => {
    await expect(queryClosure([...tiny.leaves, INVALID])).rejects.toThrow(`${INVALID} is not a valid path in the Nix store`);
  });
});
