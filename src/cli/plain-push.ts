import { storeDirOf } from '../context.js';
import { isStorePath } from '../nix/store-path.js';

// Options that leave the closure of the paths as it is. Any other (--no-closure, --with-build-deps,
// --help, one this list does not know) leaves the command line to the parser alone.
const GLOBAL_WITH_VALUE = new Set(['-c', '--config', '--host', '--hostname']);
const PUSH_WITH_VALUE = new Set([
  '-m',
  '--compression-method',
  '-l',
  '--compression-level',
  '-s',
  '--chunk-size',
  '-n',
  '--num-concurrent-chunks',
  '-j',
  '--jobs',
  '--upstream-key',
  '--exclude',
]);
const FLAGS = new Set(['-v', '--verbose', '-q', '--quiet', '--omit-deriver', '--include-upstream', '--logs', '--listings', '--debug-info']);

/** The tables above, for the test that every option push accepts is in one of them or left to the parser. */
export const PLAIN_PUSH_OPTIONS = { globalWithValue: GLOBAL_WITH_VALUE, pushWithValue: PUSH_WITH_VALUE, flags: FLAGS };

/**
 * The store paths of a command line that is plainly `push CACHE STORE-PATH...`, with options that do
 * not change which paths are listed, every path already a store path; otherwise undefined, and the
 * parser decides.
 */
export function plainPushPaths(argv: readonly string[], env: NodeJS.ProcessEnv): string[] | undefined {
  const [commandAt] = positionalsFrom(argv, 0, GLOBAL_WITH_VALUE, 1) ?? [];
  if (commandAt === undefined || argv[commandAt] !== 'push') return undefined;
  const positionals = positionalsFrom(argv, commandAt + 1, PUSH_WITH_VALUE);
  if (positionals === undefined || positionals.length < 2) return undefined;
  const storeDir = storeDirOf(env);
  const paths = positionals.slice(1).map((index) => argv[index]!.replace(/\/+$/, ''));
  return paths.every((path) => isStorePath(path, storeDir)) ? paths : undefined;
}

/** Indices of the positional arguments from `start` (at most `limit`), skipping known options and their values; undefined at anything else. */
function positionalsFrom(argv: readonly string[], start: number, withValue: ReadonlySet<string>, limit = Infinity): number[] | undefined {
  const positionals: number[] = [];
  for (let index = start; index < argv.length && positionals.length < limit; index++) {
    const arg = argv[index]!;
    if (!arg.startsWith('-')) positionals.push(index);
    else if (withValue.has(arg)) index++;
    else if (arg.startsWith('--') && arg.includes('=') && withValue.has(arg.slice(0, arg.indexOf('=')))) continue;
    else if (!FLAGS.has(arg)) return undefined;
  }
  return positionals;
}
