import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectiveValues, loadNixConf, parseNixConfText } from '../../src/nixconf/parse.js';
import { requireNix } from '../helpers/nix.js';
import { makeNixConfDirs, nixConfigError, nixShowConfig, removeDir, type NixSandboxDirs } from '../helpers/nix-user.js';

let dirs: NixSandboxDirs;

beforeAll(async () => {
  requireNix();
  dirs = await makeNixConfDirs();
});
afterAll(async () => removeDir(dirs.root));

async function ours(setting: string): Promise<string> {
  const system = await loadNixConf(join(dirs.confDir, 'nix.conf'));
  const user = await loadNixConf(join(dirs.xdgConfigHome, 'nix', 'nix.conf'));
  const initial = setting === 'trusted-users' ? [{ value: 'root', file: 'default', line: 0 }] : [];
  return effectiveValues([...system, ...user], setting, initial)
    .map((entry) => entry.value)
    .join(' ');
}

describe('nix.conf parsing agrees with Nix 2.8', () => {
  it('reads comments, blanks, tabs, CRLF, aliases, extra- and includes as nix show-config does', async () => {
    await mkdir(join(dirs.confDir, 'conf.d'), { recursive: true });
    await mkdir(join(dirs.xdgConfigHome, 'nix'), { recursive: true });
    await writeFile(
      join(dirs.confDir, 'nix.conf'),
      [
        '# a comment line',
        'include conf.d/trust.conf',
        '!include conf.d/missing.conf',
        'substituters = https://one.example   https://two.example # trailing comment',
        '\textra-binary-caches\t=\thttps://three.example\r',
        'trusted-users = root alice',
        'sandbox = false',
        '',
      ].join('\n'),
    );
    // Nix 2.8 applies an included file where the include line is: this extra- line comes before
    // trusted-users above, which resets it.
    await writeFile(
      join(dirs.confDir, 'conf.d', 'trust.conf'),
      'extra-trusted-users = lost\nextra-substituters = https://included.example\n',
    );
    await writeFile(
      join(dirs.xdgConfigHome, 'nix', 'nix.conf'),
      'extra-substituters = https://user.example\nbinary-cache-public-keys = k:1\n',
    );
    const nix = await nixShowConfig(dirs.env);
    for (const setting of ['substituters', 'trusted-users', 'trusted-public-keys']) {
      expect(await ours(setting), setting).toBe(nix.get(setting));
    }
    expect(nix.get('trusted-users')).toBe('root alice');
    expect(nix.get('substituters')).toBe('https://one.example https://two.example https://three.example https://user.example');
  });

  it('an include is applied where it stands: a later plain assignment in it resets earlier lines', async () => {
    await writeFile(join(dirs.confDir, 'nix.conf'), 'trusted-users = root\nextra-trusted-users = bob\ninclude conf.d/trust.conf\n');
    await writeFile(join(dirs.confDir, 'conf.d', 'trust.conf'), 'trusted-users = @wheel\n');
    await writeFile(join(dirs.xdgConfigHome, 'nix', 'nix.conf'), '');
    expect(await ours('trusted-users')).toBe((await nixShowConfig(dirs.env)).get('trusted-users'));
    expect(await ours('trusted-users')).toBe('@wheel');
  });

  it.each([
    ['a line without =', 'substituters https://x\n', 1],
    ['= glued to the name', 'substituters= https://x\n', 1],
    ['a lone word', 'sandbox = false\nfoo\n', 2],
    ['include with two paths', 'include a b\n', 1],
  ])('refuses %s, naming file and line, as Nix does', async (_what, text, line) => {
    await writeFile(join(dirs.confDir, 'nix.conf'), text);
    await writeFile(join(dirs.xdgConfigHome, 'nix', 'nix.conf'), '');
    expect(await nixConfigError(dirs.env)).toMatch(/illegal configuration line/);
    const path = join(dirs.confDir, 'nix.conf');
    expect(() => parseNixConfText(text, path)).toThrow(`${path} line ${line}:`);
    await expect(loadNixConf(path)).rejects.toThrow(`${path} line ${line}:`);
  });

  it('refuses a missing include (not !include), as Nix does', async () => {
    await writeFile(join(dirs.confDir, 'nix.conf'), 'include nowhere.conf\n');
    expect(await nixConfigError(dirs.env)).toMatch(/not found/);
    await expect(loadNixConf(join(dirs.confDir, 'nix.conf'))).rejects.toThrow(/line 1: included file .*nowhere\.conf not found/);
  });

  it('a missing nix.conf is an empty one; an include loop is an error, not a hang', async () => {
    expect(await loadNixConf(join(dirs.root, 'absent.conf'))).toEqual([]);
    await writeFile(join(dirs.root, 'loop.conf'), 'include loop.conf\n');
    await expect(loadNixConf(join(dirs.root, 'loop.conf'))).rejects.toThrow(/includes itself/);
  });
});
