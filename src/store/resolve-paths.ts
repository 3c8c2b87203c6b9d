import { realpath } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { DEFAULT_STORE_DIR, isStorePath } from '../nix/store-path.js';

/**
 * Turns what the user typed into store paths: a store path stays as it is (it may itself be a
 * symlink), anything else (./result) is followed to where it points, which must be a store path.
 */
export async function resolveStorePaths(args: string[], storeDir = DEFAULT_STORE_DIR): Promise<string[]> {
  const resolved: string[] = [];
  for (const arg of args) {
    const trimmed = arg.replace(/\/+$/, '');
    if (trimmed.startsWith(`${storeDir}/`) && isStorePath(trimmed, storeDir)) {
      resolved.push(trimmed);
      continue;
    }
    let target: string;
    try {
      target = await realpath(trimmed);
    } catch {
      throw new UserError(`'${arg}' does not exist`, 'give store paths like /nix/store/<hash>-<name>, or a ./result link');
    }
    if (!isStorePath(target, storeDir)) {
      const inside = target.startsWith(`${storeDir}/`);
      throw new UserError(
        inside ? `'${arg}' is inside a store path, not a store path (${target})` : `'${arg}' is not a store path (it is ${target})`,
        `give store paths like ${storeDir}/<hash>-<name>, or a ./result link`,
      );
    }
    resolved.push(target);
  }
  return resolved;
}
