// --exclude REGEX: paths whose name (what follows the hash and dash) matches are not pushed.
import { UserError } from '../errors.js';
import { HASH_PART_LENGTH } from '../nix/store-path.js';

export function compileExcludes(patterns: readonly string[] | undefined): RegExp[] {
  return (patterns ?? []).map((pattern) => {
    try {
      return new RegExp(pattern);
    } catch (error) {
      throw new UserError(
        `--exclude '${pattern}' is not a valid regular expression: ${(error as Error).message}`,
        "it is matched against the path's name, e.g. --exclude '-source$' or --exclude '^nixos-system-'",
      );
    }
  });
}

/** `/nix/store/<hash>-hello-2.12` -> `hello-2.12` */
function nameOf(storePath: string): string {
  return storePath.slice(storePath.lastIndexOf('/') + 1 + HASH_PART_LENGTH + 1);
}

/** The pattern that excludes this store path, if any. */
export function excludedBy(storePath: string, excludes: readonly RegExp[]): RegExp | undefined {
  if (excludes.length === 0) return undefined;
  const name = nameOf(storePath);
  return excludes.find((pattern) => pattern.test(name));
}
