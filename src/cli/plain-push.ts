import { storeDirOf } from '../context.js';
import { isStorePath } from '../nix/store-path.js';

/**
 * The store paths of a command line that is plainly `push CACHE STORE-PATH...`: no option anywhere
 * (one could change what is pushed, or ask for help), every path already a store path. Anything
 * else is undefined and left to the parser.
 */
export function plainPushPaths(argv: readonly string[], env: NodeJS.ProcessEnv): string[] | undefined {
  const [command, cache, ...paths] = argv;
  if (command !== 'push' || cache === undefined || paths.length === 0) return undefined;
  if (argv.some((arg) => arg.startsWith('-'))) return undefined;
  const storeDir = storeDirOf(env);
  const trimmed = paths.map((path) => path.replace(/\/+$/, ''));
  return trimmed.every((path) => isStorePath(path, storeDir)) ? trimmed : undefined;
}
