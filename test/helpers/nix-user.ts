import { execFile, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NIX_FEATURES } from './nix.js';

const execFileAsync = promisify(execFile);

/**
 * Nix as one user sees it, pointed at test folders so the real /etc/nix and /root are never
 * read or written: NIX_CONF_DIR for the system config, XDG_CONFIG_HOME (and HOME) for the user's.
 */
export interface NixSandboxDirs {
  root: string;
  confDir: string;
  home: string;
  xdgConfigHome: string;
  xdgDataHome: string;
  env: NodeJS.ProcessEnv;
}

export async function makeNixConfDirs(prefix = 'cachix-nixconf-'): Promise<NixSandboxDirs> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  await chmod(root, 0o755);
  const confDir = join(root, 'etc-nix');
  const home = join(root, 'home');
  const xdgConfigHome = join(home, '.config');
  const xdgDataHome = join(home, '.local', 'share');
  const xdgConfigDirs = join(root, 'xdg-dirs');
  for (const dir of [confDir, xdgConfigHome, xdgDataHome, xdgConfigDirs]) await mkdir(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIX_CONF_DIR: confDir,
    HOME: home,
    XDG_CONFIG_HOME: xdgConfigHome,
    XDG_DATA_HOME: xdgDataHome,
    XDG_CONFIG_DIRS: xdgConfigDirs,
    NIX_USER_CONF_FILES: undefined,
    NIX_CONFIG: undefined,
    CACHIX_CONFIG: undefined,
    CACHIX_AUTH_TOKEN: undefined,
  };
  delete env.NIX_USER_CONF_FILES;
  delete env.NIX_CONFIG;
  delete env.CACHIX_CONFIG;
  delete env.CACHIX_AUTH_TOKEN;
  return { root, confDir, home, xdgConfigHome, xdgDataHome, env };
}

/** `nix show-config` (Nix 2.8) under this environment, as a map of setting -> value. */
export async function nixShowConfig(env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const { stdout } = await execFileAsync('nix', [...NIX_FEATURES, 'show-config'], { env, encoding: 'utf8' });
  const settings = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^(\S+) = (.*)$/.exec(line);
    if (match) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

/** The error Nix prints when it reads this config, or undefined when it reads it fine. */
export async function nixConfigError(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    await execFileAsync('nix', [...NIX_FEATURES, 'show-config'], { env, encoding: 'utf8' });
    return undefined;
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error);
  }
}

export interface TestUser {
  name: string;
  uid: number;
  remove(): Promise<void>;
}

let counter = 0;

/** A real non-root user (`useradd -M`), removed again by `remove()`. CI runs as root. */
export async function createTestUser(groups: string[] = []): Promise<TestUser> {
  if (process.getuid?.() !== 0) throw new Error('creating a test user needs root (CI runs as root)');
  const name = `cachixtest-${process.pid % 100000}-${counter++}`;
  for (const group of groups) spawnSync('groupadd', ['-f', group]);
  const args = ['-M', '-s', '/bin/sh', ...(groups.length ? ['-G', groups.join(',')] : []), name];
  const result = spawnSync('useradd', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`useradd ${args.join(' ')} failed: ${result.stderr}`);
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  return {
    name,
    uid,
    async remove() {
      spawnSync('userdel', [name]);
      for (const group of groups) spawnSync('groupdel', [group]);
    },
  };
}

/** Runs a command as `user` with exactly `env` (runuser keeps no environment of ours). */
export async function runAs(
  user: string,
  env: Record<string, string | undefined>,
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const assignments = Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${key}=${value}`);
  return new Promise((resolve) => {
    execFile(
      'runuser',
      ['-u', user, '--', 'env', '-i', ...assignments, command, ...args],
      { encoding: 'utf8', maxBuffer: 1 << 26 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** Every file under `dir` with its bytes and mode, to show a failed command changed nothing. */
export async function snapshotFiles(dir: string): Promise<Record<string, string>> {
  const { readdir, readFile, lstat } = await import('node:fs/promises');
  const snapshot: Record<string, string> = {};
  async function walk(current: string): Promise<void> {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile())
        snapshot[path] = `${((await lstat(path)).mode & 0o7777).toString(8)} ${(await readFile(path)).toString('base64')}`;
    }
  }
  await walk(dir);
  return snapshot;
}
