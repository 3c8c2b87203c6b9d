import { describe, expect, it } from 'vitest';
import { NAR_HERE_MAX } from '../../src/maintain/nar-digest.js';
import { verifyOrder } from '../../src/maintain/verify-path.js';

const MiB = 1 << 20;

describe('the order verify checks paths in', () => {
  it('NARs the workers digest go first, largest first; the small ones and those the store lacks keep their order after them', () => {
    const paths = [
      { name: 'small-a', narSize: 4096 },
      { name: 'big-150', narSize: 150 * MiB },
      { name: 'unknown', narSize: undefined },
      { name: 'big-350', narSize: 350 * MiB },
      { name: 'edge', narSize: NAR_HERE_MAX },
      { name: 'big-2', narSize: 2 * MiB },
      { name: 'small-b', narSize: 100 },
    ];
    expect(verifyOrder(paths, (path) => path.narSize).map((path) => path.name)).toEqual([
      'big-350',
      'big-150',
      'big-2',
      'small-a',
      'unknown',
      'edge',
      'small-b',
    ]);
  });

  it('with no NAR for the workers, the order given, as a copy', () => {
    const paths = [{ narSize: 3 }, { narSize: 1 }, { narSize: 2 }];
    const ordered = verifyOrder(paths, (path) => path.narSize);
    expect(ordered).toEqual(paths);
    expect(ordered).not.toBe(paths);
  });
});
