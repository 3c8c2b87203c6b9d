import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NarParseError } from '../../src/nix/nar/parse.js';
import { restoreNar } from './nar-restore.js';
import { nixDump, requireNix } from './nix.js';

function str(value: string): Buffer {
  const bytes = Buffer.from(value);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([length, bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
}
const nar = (...tokens: string[]): Buffer => Buffer.concat(['nix-archive-1', ...tokens].map(str));

async function* inPieces(bytes: Buffer, pieceSize: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += pieceSize) yield bytes.subarray(offset, offset + pieceSize);
}

let scratch: string;
beforeAll(() => {
  requireNix();
  scratch = mkdtempSync(join(tmpdir(), 'nar-restore-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('restoreNar', () => {
  it('writes the tree nix-store --restore writes', async () => {
    const source = mkdtempSync(join(scratch, 'source-'));
    const built = spawnSync('sh', [
      '-c',
      `cd ${source} && mkdir -p d/e && printf hi > d/e/f && printf '#!/bin/sh' > x && chmod 755 x && ln -s d/e y && : > empty`,
    ]);
    expect(built.status).toBe(0);
    const reference = await nixDump(source);

    const ours = join(scratch, 'ours');
    await restoreNar(inPieces(reference, 4096), ours);
    const theirs = join(scratch, 'theirs');
    expect(spawnSync('nix-store', ['--restore', theirs], { input: reference }).status).toBe(0);

    for (const root of [ours, theirs]) {
      expect(readdirSync(root).sort()).toEqual(['d', 'empty', 'x', 'y']);
      expect(readFileSync(join(root, 'd/e/f'), 'utf8')).toBe('hi');
      expect(statSync(join(root, 'x')).mode & 0o100).toBe(0o100);
      expect(statSync(join(root, 'd/e/f')).mode & 0o111).toBe(0);
      expect(readlinkSync(join(root, 'y'))).toBe('d/e');
      expect(lstatSync(join(root, 'empty')).size).toBe(0);
    }
    expect((await nixDump(ours)).equals(reference)).toBe(true);
  });

  it('refuses a target that already exists', async () => {
    const target = mkdtempSync(join(scratch, 'exists-'));
    await expect(restoreNar(inPieces(nar('(', 'type', 'regular', 'contents', 'x', ')'), 64), target)).rejects.toThrow(/already exists/);
  });

  it('writes nothing outside the target for a NAR naming ..', async () => {
    const parent = mkdtempSync(join(scratch, 'escape-'));
    const target = join(parent, 'target');
    const evil = nar(
      '(',
      'type',
      'directory',
      'entry',
      '(',
      'name',
      '..',
      'node',
      '(',
      'type',
      'directory',
      'entry',
      '(',
      'name',
      'escaped',
      'node',
      '(',
      'type',
      'regular',
      'contents',
      'gotcha',
      ')',
      ')',
      ')',
      ')',
      ')',
    );
    await expect(restoreNar(inPieces(evil, 64), target)).rejects.toThrow(NarParseError);
    expect(existsSync(join(parent, 'escaped'))).toBe(false);
  });

  it('stops at the first invalid byte, leaving what came before', async () => {
    const target = join(mkdtempSync(join(scratch, 'partial-')), 'target');
    const truncated = nar(
      '(',
      'type',
      'directory',
      'entry',
      '(',
      'name',
      'a',
      'node',
      '(',
      'type',
      'regular',
      'contents',
      'whole',
      ')',
      ')',
      'entry',
      '(',
      'name',
      'b',
    ).subarray(0, -3);
    await expect(restoreNar(inPieces(truncated, 16), target)).rejects.toThrow(/truncated/);
    expect(readFileSync(join(target, 'a'), 'utf8')).toBe('whole');
    expect(readdirSync(target)).toEqual(['a']);
  });
});
