import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nixString, removeNixosModule, writeNixosModules } from '../../src/nixconf/nixos.js';
import { requireNix } from '../helpers/nix.js';
import { removeDir } from '../helpers/nix-user.js';

const execFileAsync = promisify(execFile);

/** Evaluates a Nix expression with real Nix and returns it as JSON. */
async function nixEval(expression: string): Promise<unknown> {
  const { stdout } = await execFileAsync('nix-instantiate', ['--eval', '--strict', '--json', '--expr', expression], { encoding: 'utf8' });
  return JSON.parse(stdout);
}

let folder: string;
beforeAll(async () => {
  requireNix();
  folder = await mkdtemp(join(tmpdir(), 'cachix-nixos-'));
});
afterAll(async () => removeDir(folder));

describe('NixOS modules', () => {
  it('writes a module per cache and a glue module that imports them all, as Nix evaluates them', async () => {
    await writeNixosModules(folder, 'one', 'https://one.example', ['one-1:AAAA', 'one-2:BBBB']);
    const second = await writeNixosModules(folder, 'two', 'file:///srv/two', ['two-1:CCCC']);
    await writeFile(join(folder, 'cachix', 'notes.txt'), 'not a module');
    expect(second.changed).toBe(true);
    const imports = (await nixEval(`map toString (import ${folder}/cachix.nix {}).imports`)) as string[];
    expect(imports.map((path) => path.slice(path.lastIndexOf('/') + 1))).toEqual(['one.nix', 'two.nix']);
    expect(await nixEval(`(import ${folder}/cachix/one.nix).nix.settings`)).toEqual({
      substituters: ['https://one.example'],
      'trusted-public-keys': ['one-1:AAAA', 'one-2:BBBB'],
    });
    expect(await nixEval(`(import ${folder}/cachix.nix {}).nix.settings.substituters`)).toEqual(['https://cache.nixos.org/']);
  });

  it('changes nothing the second time, and remove deletes only that cache’s module', async () => {
    const module = join(folder, 'cachix', 'one.nix');
    const before = await readFile(module, 'utf8');
    expect((await writeNixosModules(folder, 'one', 'https://one.example', ['one-1:AAAA', 'one-2:BBBB'])).changed).toBe(false);
    expect(await readFile(module, 'utf8')).toBe(before);
    expect((await removeNixosModule(folder, 'one')).removed).toBe(true);
    const imports = (await nixEval(`map toString (import ${folder}/cachix.nix {}).imports`)) as string[];
    expect(imports.map((path) => path.slice(path.lastIndexOf('/') + 1))).toEqual(['two.nix']);
  });

  it('quotes strings so Nix reads them back unchanged', async () => {
    const tricky = 'a"b\\c${d}';
    expect(await nixEval(nixString(tricky))).toBe(tricky);
  });
});
