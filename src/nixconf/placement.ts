import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { xdgConfigHome } from '../config-paths.js';
import { UserError } from '../errors.js';
import { systemAllowsCache } from './untrusted.js';
import { detectTrust, systemNixConfPath, type NixUser, type TrustVerdict } from './trust.js';
import { nixConfDirOf } from '../context.js';

// Where `cachix use` writes, chosen as cachix's InstallationMode does: root on NixOS writes NixOS
// modules; root elsewhere the system nix.conf; a trusted user their own nix.conf; an untrusted
// user nothing at all (Nix would ignore the settings). `-O DIR` writes into DIR for declarative
// setups, whoever runs it.

export type Mode = 'nixos' | 'root-nixconf' | 'user-nixconf';

export interface Placement {
  mode: Mode | 'output-directory';
  /** The nix.conf to edit (all modes but nixos). */
  nixConfPath?: string;
  /** The folder for NixOS modules (nixos mode). */
  nixosFolder?: string;
  /** Where a private cache's credentials go when nix.conf names no netrc-file. */
  netrcPath: string;
  /** Whether nix.conf must then name netrc-file (it is not the default $NIX_CONF_DIR/netrc). */
  setNetrcFile: boolean;
  /** What we know about trust, when we had to ask. */
  trust?: TrustVerdict;
  /** Worth telling the user about the choice made (an untrusted user whose cache the admin allows). */
  note?: string;
}

export interface PlacementOptions {
  mode?: Mode | undefined;
  nixosFolder?: string | undefined;
  outputDirectory?: string | undefined;
}

export function isNixOS(): boolean {
  return existsSync('/etc/NIXOS') || existsSync('/run/current-system');
}

/** The user's nix.conf Nix reads last (so it wins): the first of NIX_USER_CONF_FILES, else XDG. */
export function userNixConfPath(env: NodeJS.ProcessEnv): string {
  const listed = env.NIX_USER_CONF_FILES?.split(':').filter(Boolean)[0];
  return listed ?? join(xdgConfigHome(env), 'nix', 'nix.conf');
}

function placementFor(mode: Mode, options: PlacementOptions, env: NodeJS.ProcessEnv): Placement {
  switch (mode) {
    case 'nixos':
      return { mode, nixosFolder: options.nixosFolder ?? '/etc/nixos', netrcPath: join(nixConfDirOf(env), 'netrc'), setNetrcFile: false };
    case 'root-nixconf':
      return { mode, nixConfPath: systemNixConfPath(env), netrcPath: join(nixConfDirOf(env), 'netrc'), setNetrcFile: false };
    case 'user-nixconf': {
      // The system netrc is root's: a user's credentials go beside their own nix.conf, named there.
      const nixConfPath = userNixConfPath(env);
      return { mode, nixConfPath, netrcPath: join(dirname(nixConfPath), 'netrc'), setNetrcFile: true };
    }
  }
}

/** The cache `use` was asked for, so the advice can name its substituter and key. */
export interface CacheToTrust {
  substituterUrl: string;
  publicKeys: string[];
}

export function untrustedError(
  user: NixUser,
  trust: TrustVerdict,
  cacheName: string,
  env: NodeJS.ProcessEnv,
  cache?: CacheToTrust,
): UserError {
  const line = trust.trustedUsersSet ? `extra-trusted-users = ${user.name}` : `trusted-users = root ${user.name}`;
  const systemConf = systemNixConfPath(env);
  // Narrow first: trusting one cache's substituter and key lets the user use it without making
  // them root-equivalent, which trusted-users does (cachix issues #612, #683).
  const narrow = cache
    ? [
        `the narrow fix: root lets users pick this one cache; add to ${systemConf} and restart nix-daemon:`,
        `      extra-trusted-substituters = ${cache.substituterUrl}`,
        `      extra-trusted-public-keys = ${cache.publicKeys.join(' ')}`,
        `  on NixOS, in configuration.nix (then nixos-rebuild switch):`,
        `      nix.settings.trusted-substituters = [ "${cache.substituterUrl}" ];`,
        `      nix.settings.trusted-public-keys = [ ${cache.publicKeys.map((key) => `"${key}"`).join(' ')} ];`,
        `  then ${user.name} adds to ~/.config/nix/nix.conf:  extra-substituters = ${cache.substituterUrl}`,
        `the broad fix, which makes ${user.name} root-equivalent: add to ${systemConf}, restart nix-daemon, run this again:`,
      ]
    : [`either add this line to ${systemConf} and restart nix-daemon, then run this again:`];
  return new UserError(
    `user '${user.name}' is not trusted by Nix, so Nix would ignore a substituter it adds: ${trust.reason}`,
    [
      ...narrow,
      `      ${line}`,
      `  or on NixOS, add to configuration.nix and run nixos-rebuild switch:`,
      `      nix.settings.trusted-users = [ "root" "${user.name}" ];`,
      `  or configure it system-wide as root:`,
      // Root's cachix config does not know this user's cache names: the URL and key say it all.
      cache
        ? `      sudo cachix use ${cache.substituterUrl}${cache.publicKeys[0] ? ` --public-key ${cache.publicKeys[0]}` : ''}`
        : `      sudo cachix use ${cacheName}`,
    ].join('\n'),
  );
}

/**
 * `purpose` 'remove' never asks about trust: taking out what `use` added is always allowed, and a
 * user who is no longer trusted still owns their nix.conf.
 */
export async function choosePlacement(
  options: PlacementOptions,
  user: NixUser,
  cacheName: string,
  env: NodeJS.ProcessEnv,
  cache: CacheToTrust,
  purpose: 'use' | 'remove' = 'use',
): Promise<Placement> {
  if (options.outputDirectory) {
    const dir = options.outputDirectory;
    const found = await stat(dir).catch(() => undefined);
    if (found && !found.isDirectory()) {
      throw new UserError(`-O ${dir} is a file, not a directory`, 'give -O a directory to write nix.conf (and netrc) into');
    }
    // The files are meant to be copied elsewhere, so no absolute netrc-file is written into them.
    if (options.mode === 'nixos') return { mode: 'nixos', nixosFolder: dir, netrcPath: join(dir, 'netrc'), setNetrcFile: false };
    return { mode: 'output-directory', nixConfPath: join(dir, 'nix.conf'), netrcPath: join(dir, 'netrc'), setNetrcFile: false };
  }
  if (options.mode) return placementFor(options.mode, options, env);
  if (user.uid === 0) return placementFor(isNixOS() ? 'nixos' : 'root-nixconf', options, env);
  if (purpose === 'remove') return placementFor('user-nixconf', options, env);
  const trust = await detectTrust(user, env);
  if (!trust.trusted) {
    const allowed = await systemAllowsCache(cache, env);
    if (!allowed) throw untrustedError(user, trust, cacheName, env, cache);
    return {
      ...placementFor('user-nixconf', options, env),
      trust: { ...trust, trusted: true, reason: allowed },
      note: `'${user.name}' is not a trusted Nix user, but ${allowed}, so Nix honours it from your own nix.conf`,
    };
  }
  return { ...placementFor('user-nixconf', options, env), trust };
}
