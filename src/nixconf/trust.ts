import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { effectiveValues, loadNixConf, type SettingValue } from './parse.js';
import { nixConfDirOf, storeDirOf } from '../context.js';

const execFileAsync = promisify(execFile);

// Does the Nix daemon trust this user? Only a trusted user's substituters and keys are honoured
// (Nix ignores the rest with a warning), so `cachix use` must know before it writes anything.

export interface NixUser {
  name: string;
  uid: number;
  /** Primary and supplementary groups, by name. */
  groups: string[];
}

export interface TrustVerdict {
  trusted: boolean;
  /** Why, in words, for messages: which rule of which file. */
  reason: string;
  /** Whether the system config already sets trusted-users (so the advice is an extra- line). */
  trustedUsersSet: boolean;
}

export function systemNixConfPath(env: NodeJS.ProcessEnv): string {
  return join(nixConfDirOf(env), 'nix.conf');
}

/** The user by uid, not $USER: `runuser` and `sudo` may leave $USER pointing at someone else. */
export async function currentUser(): Promise<NixUser> {
  const info = userInfo();
  let groups: string[] = [];
  try {
    const { stdout } = await execFileAsync('id', ['-Gn', info.username], { encoding: 'utf8' });
    groups = stdout.trim().split(/\s+/).filter(Boolean);
  } catch {
    groups = [];
  }
  return { name: info.username, uid: info.uid, groups };
}

function where(value: SettingValue): string {
  return value.line === 0 ? value.file : `${value.file} line ${value.line}`;
}

/** Nix's matchUser (daemon.cc): `*`, the user's name, or `@group` for any group the user is in. */
export function matchTrustedUsers(user: NixUser, trustedUsers: SettingValue[]): string | undefined {
  for (const entry of trustedUsers) {
    if (entry.value === '*') return `trusted-users is '*' (${where(entry)})`;
    if (entry.value === user.name) return `'${user.name}' is in trusted-users (${where(entry)})`;
    if (entry.value.startsWith('@') && user.groups.includes(entry.value.slice(1))) {
      return `'${user.name}' is in group '${entry.value.slice(1)}', which trusted-users lists as ${entry.value} (${where(entry)})`;
    }
  }
  return undefined;
}

/**
 * The `trusted` field of `nix store ping --json` (2.15+; `nix store info --json` in 2.19+):
 * 1/0 in the Nix versions that added it, a boolean in some later ones, absent for a store that
 * has no notion of it (a local store opened directly).
 */
export function trustFromStoreInfo(json: string): boolean | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const trusted = typeof parsed === 'object' && parsed !== null ? (parsed as { trusted?: unknown }).trusted : undefined;
  if (trusted === 1 || trusted === true) return true;
  if (trusted === 0 || trusted === false) return false;
  return undefined;
}

/** Talks to the store as this user would; Nix 2.15+ says whether the daemon trusts us. */
async function askNixForTrust(env: NodeJS.ProcessEnv): Promise<boolean | undefined> {
  try {
    const { stdout } = await execFileAsync('nix', ['--extra-experimental-features', 'nix-command', 'store', 'ping', '--json'], {
      env,
      encoding: 'utf8',
      timeout: 20_000,
    });
    return trustFromStoreInfo(stdout);
  } catch {
    // Nix 2.8 has no --json here; no daemon, or no nix at all: decide from the config instead.
    return undefined;
  }
}

function usesDaemon(env: NodeJS.ProcessEnv): boolean {
  const remote = env.NIX_REMOTE ?? '';
  return remote === 'daemon' || remote.startsWith('unix://');
}

export async function detectTrust(user: NixUser, env: NodeJS.ProcessEnv): Promise<TrustVerdict> {
  const systemConf = systemNixConfPath(env);
  const assignments = await loadNixConf(systemConf);
  const trustedUsers = effectiveValues(assignments, 'trusted-users', [{ value: 'root', file: "Nix's default", line: 0 }]);
  const trustedUsersSet = trustedUsers.some((entry) => entry.line !== 0);
  if (user.uid === 0) return { trusted: true, reason: 'root is trusted', trustedUsersSet };
  const storeDir = storeDirOf(env);
  if (!usesDaemon(env)) {
    const writable = await access(storeDir, constants.W_OK).then(
      () => true,
      () => false,
    );
    if (writable) return { trusted: true, reason: `'${user.name}' can write ${storeDir} (a single-user install)`, trustedUsersSet };
  }
  const answer = await askNixForTrust(env);
  if (answer !== undefined) {
    return { trusted: answer, reason: `the Nix daemon says '${user.name}' is ${answer ? '' : 'not '}trusted`, trustedUsersSet };
  }
  const match = matchTrustedUsers(user, trustedUsers);
  if (match) return { trusted: true, reason: match, trustedUsersSet };
  const listed = trustedUsers.map((entry) => entry.value).join(' ') || '(empty)';
  return { trusted: false, reason: `'${user.name}' is not in trusted-users (${listed}) of ${systemConf}`, trustedUsersSet };
}
