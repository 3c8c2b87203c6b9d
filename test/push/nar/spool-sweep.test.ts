import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FOREIGN_SPOOL_STALE_MS, sweepStaleSpoolFiles } from '../../../src/push/nar/spool-sweep.js';
import { temporaryName } from '../../../src/util/temp-name.js';
import { writerTag } from '../../../src/util/writer-identity.js';

describe('sweepStaleSpoolFiles', () => {
  let directory: string;
  const tag = writerTag();
  const foreignTag = tag === '00000000' ? '11111111' : '00000000';
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'cachix-sweep-'));
  });
  beforeEach(async () => {
    for (const name of await readdir(directory)) await rm(join(directory, name));
  });
  afterAll(async () => rm(directory, { recursive: true, force: true }));

  it('removes spool files of dead pushes here, keeps live ones and everything else', async () => {
    // A pid that certainly belonged to a process that has exited.
    const deadPid = spawnSync('true').pid!;
    const stale = [`.tmp-${deadPid}-${tag}-0123456789ab.nar.zst`, `.tmp-${deadPid}-${tag}-0123456789ab.nar`];
    const kept = [
      `.tmp-${process.pid}-${tag}-0123456789ab.nar.zst`,
      `.tmp-1-${tag}-0123456789ab.nar.xz`,
      '1b2c3d.nar.zst',
      `.tmp-${deadPid}-${tag}-0123456789ab`,
    ];
    for (const name of [...stale, ...kept]) await writeFile(join(directory, name), 'x');
    expect(await sweepStaleSpoolFiles(directory)).toBe(2);
    expect((await readdir(directory)).sort()).toEqual([...kept].sort());
  });

  it('never removes a fresh file written in another PID namespace, boot or machine, whatever its pid', async () => {
    // In another namespace this pid may well be a live push: here it names no process at all.
    const deadPid = spawnSync('true').pid!;
    const foreign = [`.tmp-${deadPid}-${foreignTag}-0123456789ab.nar.zst`, `.tmp-${deadPid}-0123456789ab.nar.zst`];
    for (const name of foreign) await writeFile(join(directory, name), 'x');
    expect(await sweepStaleSpoolFiles(directory)).toBe(0);
    expect((await readdir(directory)).sort()).toEqual([...foreign].sort());
  });

  it('removes a foreign file only once it has been untouched for a day', async () => {
    const old = `.tmp-2-${foreignTag}-0123456789ab.nar.zst`;
    const recent = `.tmp-3-${foreignTag}-0123456789ab.nar.zst`;
    const oldUntagged = `.tmp-4-0123456789ab.nar.xz`;
    for (const name of [old, recent, oldUntagged]) await writeFile(join(directory, name), 'x');
    const longAgo = new Date(Date.now() - FOREIGN_SPOOL_STALE_MS - 60_000);
    await utimes(join(directory, old), longAgo, longAgo);
    await utimes(join(directory, oldUntagged), longAgo, longAgo);
    // utimes sets mtime, but ctime moves to now: the sweep must judge by mtime alone here.
    expect(await sweepStaleSpoolFiles(directory)).toBe(2);
    expect(await readdir(directory)).toEqual([recent]);
  });

  it('recognises the names pushes really give (temporaryName), which never repeat', async () => {
    const names = Array.from({ length: 10_000 }, () => temporaryName());
    expect(new Set(names).size).toBe(names.length);
    expect(names[0]).toContain(`-${tag}-`);
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
