// Every ```sh block of README.md runs as written, so an example cannot drift from the program.
// Blocks run in order in one private sandbox (HOME, XDG folders, a Nix config directory holding a
// copy of the system nix.conf), with `cachix` on PATH as our bin/cachix. System folders an
// example names stand for folders of the sandbox: /etc/nix for its Nix config directory, /run for
// its own run folder. Lines that run the project's own npm scripts are checked against the CI
// scripts that run them (`.ci/run`, `.ci/package-check`), and `npm run mutate` selections must
// still select mutants (as mutate/run.ts selects): running them here would install, pack or
// mutate for minutes.
import { spawn } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MUTANTS } from '../mutate/mutants.js';
import { VERSION_LINE } from '../src/cli/version.js';
import { CACHIX_BIN } from './helpers/cli.js';
import { requireNix } from './helpers/nix.js';

const ROOT = resolve(import.meta.dirname, '..');

interface ShellBlock {
  section: string;
  line: number;
  text: string;
}

/** README's ```sh blocks, each with the heading it stands under and its first line number. */
export function shellBlocks(readme: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  const lines = readme.split('\n');
  let section = '';
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (/^#{2,3} /.test(line)) section = line.replace(/^#+ /, '');
    if (line !== '```sh') continue;
    const end = lines.indexOf('```', index + 1);
    blocks.push({ section, line: index + 2, text: lines.slice(index + 1, end).join('\n') });
    index = end;
  }
  return blocks;
}

const commandOf = (line: string): string => line.replace(/\s+#.*$/, '').trim();
const isNpm = (line: string): boolean => /^npm /.test(commandOf(line));

function runBlock(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { env, cwd, detached: true });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // A background job the block started and did not stop (it failed first) goes with it.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // none left
      }
      resolvePromise({ code, output });
    });
  });
}

describe('README.md: every shell example runs as written', async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const blocks = shellBlocks(readme);
  let sandbox: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    requireNix();
    sandbox = await mkdtemp(join(tmpdir(), 'cachix-readme-'));
    for (const dir of ['bin', 'home', 'work', 'etc-nix', 'run', 'xdg-runtime']) await mkdir(join(sandbox, dir));
    await symlink(CACHIX_BIN, join(sandbox, 'bin', 'cachix'));
    await copyFile('/etc/nix/nix.conf', join(sandbox, 'etc-nix', 'nix.conf'));
    // No network here: Nix would spend seconds retrying cache.nixos.org before each build.
    await appendFile(join(sandbox, 'etc-nix', 'nix.conf'), '\nsubstituters =\n');
    env = {
      ...process.env,
      PATH: `${join(sandbox, 'bin')}:${process.env.PATH}`,
      HOME: join(sandbox, 'home'),
      XDG_CONFIG_HOME: join(sandbox, 'home', '.config'),
      XDG_DATA_HOME: join(sandbox, 'home', '.local', 'share'),
      XDG_CACHE_HOME: join(sandbox, 'home', '.cache'),
      XDG_RUNTIME_DIR: join(sandbox, 'xdg-runtime'),
      NIX_CONF_DIR: join(sandbox, 'etc-nix'),
      CACHIX_SIGNING_KEY: '',
      CACHIX_AUTH_TOKEN: '',
      CACHIX_DAEMON_SOCKET: '',
      CI: 'true',
    };
  });
  afterAll(async () => {
    if (sandbox) await rm(sandbox, { recursive: true, force: true });
  });

  it('has the examples this test knows how to run', () => {
    expect(blocks.map((block) => block.section)).toEqual(
      expect.arrayContaining([
        'Set up',
        'Quick start: a cache on this machine',
        "Pushing while building: the daemon and Nix's post-build-hook",
      ]),
    );
  });

  it.each(blocks.map((block) => [`line ${block.line} (${block.section})`, block] as const))(
    'runs the block at %s',
    async (_name, block) => {
      const script = block.text
        .split('\n')
        .filter((line) => !isNpm(line))
        .join('\n')
        .replaceAll('/etc/nix', join(sandbox, 'etc-nix'))
        .replaceAll('/run/', `${join(sandbox, 'run')}/`);
      if (script.trim() === '') return;
      const { code, output } = await runBlock(script, env, join(sandbox, 'work'));
      expect(code, `README.md line ${block.line}:\n${block.text}\n--- what it printed ---\n${output}`).toBe(0);
    },
  );

  it("npm lines run the project's scripts as CI runs them, and mutate selections still select", async () => {
    const ci = (await readFile(join(ROOT, '.ci/run'), 'utf8')) + (await readFile(join(ROOT, '.ci/package-check'), 'utf8'));
    const npmLines = blocks.flatMap((block) => block.text.split('\n').filter(isNpm).map(commandOf));
    expect(npmLines.length).toBeGreaterThan(0);
    for (const line of npmLines) {
      const mutate = /^npm run mutate(?: -- (.*))?$/.exec(line);
      if (mutate) {
        // The runner's selection (mutate/run.ts): a word matches a mutant's id or file.
        const filters = (mutate[1] ?? '').split(/\s+/).filter((arg) => arg && !arg.startsWith('--'));
        const selected = MUTANTS.filter(
          (mutant) => filters.length === 0 || filters.some((word) => mutant.id.includes(word) || mutant.file.includes(word)),
        );
        expect(selected.length, `${line} selects no mutant`).toBeGreaterThan(filters.length > 0 ? 0 : MUTANTS.length - 1);
        continue;
      }
      // The command and its subcommand (and -g) as CI runs them: `npm ci`, `npm test`, `npm pack`, `npm install -g`.
      const words = line.split(/\s+/);
      const core = words.slice(0, words[1] === 'install' ? 3 : 2).join(' ');
      expect(ci, `${line}: CI never runs ${core}`).toContain(core);
    }
  });

  it('names the version --version prints, and the tarball npm pack makes', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
    expect(readme).toContain(`\`cachix --version\` prints \`${VERSION_LINE}\``);
    for (const tarball of readme.match(/cachix-any-[0-9][^\s`]*\.tgz/g) ?? []) expect(tarball).toBe(`${pkg.name}-${pkg.version}.tgz`);
  });
});
