import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The hash part of a store path: the name of its narinfo in a cache, without `.narinfo`. */
export const hashOf = (path: string): string => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command'];

/** Fails loudly (never skips) when Nix is not installed. */
export function requireNix(): void {
  const result = spawnSync('nix-store', ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(
      'these tests need real Nix: install it with `apt-get install nix-bin` (Debian) and run as a user who can write /nix/store',
    );
  }
}

export async function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<string> {
  const child = execFileAsync(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    maxBuffer: 1 << 28,
    encoding: 'utf8',
  });
  if (options.input !== undefined) {
    child.child.stdin?.end(options.input);
  }
  const { stdout } = await child;
  return stdout;
}

/**
 * Builds a derivation from a bash builder script with real Nix and returns its output path.
 * A unique `salt` makes a fresh path every test run, so tests never see another run's paths.
 */
export async function buildWithNix(name: string, builderScript: string, options: { deps?: string[]; salt?: string } = {}): Promise<string> {
  requireNix();
  const dir = await mkdtemp(join(tmpdir(), 'cachix-nix-'));
  const salt = options.salt ?? `${process.pid}-${Date.now()}-${Math.random()}`;
  const deps = (options.deps ?? []).map((dep, index) => `dep${index} = builtins.storePath ${JSON.stringify(dep)};`).join('\n  ');
  // The script travels inside the derivation: builders run as nixbld users who cannot read our temp dirs.
  const script = `export PATH=/bin:/usr/bin\nset -e\n${builderScript}\n${KEEP_BUILDER_LOG_OPEN}\n`;
  const expression = `derivation {
  name = ${JSON.stringify(name)};
  system = builtins.currentSystem;
  # Nix 2.8 otherwise starts its build hook (nix __build-remote) for every build, to hear it decline.
  preferLocalBuild = true;
  builder = "/bin/bash";
  args = [ "-c" ${nixString(script)} ];
  salt = ${JSON.stringify(salt)};
  ${deps}
}`;
  const file = join(dir, 'default.nix');
  await writeFile(file, expression);
  const out = await retryKilledBuild(() => run('nix-build', [file, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS]));
  return out.trim().split('\n').pop()!;
}

/**
 * The last line of every test builder script: a shell builtin, so the shell itself outlives its
 * last external command. Nix 2.8 takes end-of-file on the builder's log as "the builder is done"
 * and at once SIGKILLs its process group. A shell that `exec`s its last command (bash and dash
 * both do) hands the log to, say, `chmod` or `head`, whose exit handler closes stdout and stderr
 * before the process exits; under load Nix's SIGKILL lands in that gap and the build "failed
 * due to signal 9 (Killed)". Shown on this machine: a builder ending in
 * `exec 1>&- 2>&-; sleep 1` is killed every time, and the same with a trailing `:` never is.
 */
export const KEEP_BUILDER_LOG_OPEN = ':';

/**
 * A build killed as above (by a script that does not end in KEEP_BUILDER_LOG_OPEN, or by
 * anything else) is tried again, at most three times; any other failure is not.
 */
export async function retryKilledBuild<T>(build: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await build();
    } catch (error) {
      const killed = /failed due to signal 9 \(Killed\)/.test(String((error as { stderr?: string }).stderr ?? (error as Error).message));
      if (!killed || attempt >= 3) throw error;
    }
  }
}

/** Tests have no network: never let Nix try cache.nixos.org. */
export const NO_SUBSTITUTERS = ['--option', 'substituters', ''];

/** A Nix string literal: JSON's escapes plus `${`, which Nix would read as interpolation. */
export function nixString(text: string): string {
  return JSON.stringify(text).replace(/\$\{/g, '\\${');
}

/**
 * A closure of three paths with what NAR serialization must get right: executables, symlinks
 * (one dangling), nested and empty directories, empty files, names that sort differently by
 * bytes than by locale, and a few MB of data.
 */
export async function buildTestClosure(tag = 'fixture'): Promise<{ top: string; lib: string; data: string }> {
  const data = await buildWithNix(
    `${tag}-data`,
    `
mkdir -p $out/share/deep/er/still
head -c 3000000 /dev/urandom > $out/share/random.bin
seq 1 200000 > $out/share/numbers.txt
: > $out/share/empty
mkdir $out/share/emptydir
echo nested > $out/share/deep/er/still/file.txt
echo B > $out/share/B; echo a > $out/share/a; echo _ > $out/share/_u; echo Z > $out/share/Zed
`,
  );
  const lib = await buildWithNix(
    `${tag}-lib`,
    `
mkdir -p $out/lib
echo 'lib for ${'$'}{dep0}' > $out/lib/libfoo.so.1
ln -s libfoo.so.1 $out/lib/libfoo.so
ln -s /nonexistent/target $out/lib/dangling
ln -s $dep0/share $out/share
`,
    { deps: [data] },
  );
  const top = await buildWithNix(
    `${tag}-top`,
    `
mkdir -p $out/bin
printf '#!/bin/sh\\necho hello from %s\\n' "$dep0" > $out/bin/hello
chmod +x $out/bin/hello
ln -s $dep0/lib $out/lib
`,
    { deps: [lib] },
  );
  return { top, lib, data };
}

/** `nix-store --dump PATH`: the reference NAR. */
export async function nixDump(path: string): Promise<Buffer> {
  const result = spawnSync('nix-store', ['--dump', path], { maxBuffer: 1 << 30 });
  if (result.status !== 0) throw new Error(`nix-store --dump ${path} failed: ${result.stderr}`);
  return result.stdout;
}

export async function nixClosure(path: string): Promise<string[]> {
  return (await run('nix-store', ['-qR', path])).trim().split('\n');
}
