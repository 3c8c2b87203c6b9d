import { homedir } from 'node:os';
import { join } from 'node:path';

// Where the configuration lives (XDG base directories). Kept apart from config.ts, which parses
// TOML: every command needs these paths at start-up, and only some need the parser.

export function xdgConfigHome(env = process.env): string {
  return env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
}

export function xdgDataHome(env = process.env): string {
  return env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
}

export function defaultConfigPath(env = process.env): string {
  return join(xdgConfigHome(env), 'cachix', 'config.toml');
}

/** cachix's own configuration, read when ours has no entry. */
export function defaultCachixDhallPath(env = process.env): string {
  return join(xdgConfigHome(env), 'cachix', 'cachix.dhall');
}

/** Where `create` puts local file:// caches: `$XDG_DATA_HOME/cachix/caches/<name>`. */
export function localCacheDir(name: string, env = process.env): string {
  return join(xdgDataHome(env), 'cachix', 'caches', name);
}
