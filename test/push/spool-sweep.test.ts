import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStaleSpoolFiles } from '../../src/push/spool-sweep.js';
import { temporaryName } from '../../src/util/temp-name.js';

describe('sweepStaleSpoolFiles', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'cachix-sweep-'));
  });
  afterAll(async () => rm(directory, { recursive: true, force: true }));

  it('removes spool files of dead pushes, keeps live ones and everything else', async () => {
    // A pid that certainly belonged to a process that has exited.
    const deadPid = spawnSync('true').pid!;
    const stale = [`.tmp-${deadPid}-0123456789ab.nar.zst`, `.tmp-${deadPid}-0123456789ab.nar`];
    const kept = [
      `.tmp-${process.pid}-0123456789ab.nar.zst`,
      `.tmp-1-0123456789ab.nar.xz`,
      '1b2c3d.nar.zst',
      `.tmp-${deadPid}-0123456789ab`,
    ];
    for (const name of [...stale, ...kept]) await writeFile(join(directory, name), 'x');
    expect(await sweepStaleSpoolFiles(directory)).toBe(2);
    expect((await readdir(directory)).sort()).toEqual([...kept].sort());
  });

  it('recognises the names pushes really give (temporaryName), which never repeat', async () => {
    const names = Array.from({ length: 10_000 }, () => temporaryName());
    expect(new Set(names).size).toBe(names.length);
    const deadPid = spawnSync('true').pid!;
    const fromDeadPush = `${names[0]!.replace(`.tmp-${process.pid}-`, `.tmp-${deadPid}-`)}.nar.zst`;
    const fromUs = `${names[1]!}.nar.zst`;
    await writeFile(join(directory, fromDeadPush), 'x');
    await writeFile(join(directory, fromUs), 'x');
    expect(await sweepStaleSpoolFiles(directory)).toBe(1);
    expect(await readdir(directory)).toContain(fromUs);
    expect(await readdir(directory)).not.toContain(fromDeadPush);
  });

  it('a missing directory is nothing to sweep', async () => {
    expect(await sweepStaleSpoolFiles(join(directory, 'nope'))).toBe(0);
  });
});
