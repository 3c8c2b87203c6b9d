// `cachix push CACHE STORE-PATH...` with no option at all, as a CI job runs it after every build,
// run without building the command-line parser: commander and the options of every command are
// most of what such a push's start-up spends above Node's own, and none of them can change what
// this command line means. What commander would hand the command is fixed: the cache, the paths
// as given, and each push option's default (a test keeps them equal to commander's).
import { makeContext } from '../context.js';
import { report, type CliIo } from './report.js';

/** push's options when none is given, as commander gives them (its `opts()`). */
export const BARE_PUSH_FLAGS: Readonly<{ jobs: number; closure: boolean }> = Object.freeze({ jobs: 8, closure: true });

/** Whether `argv` is `push CACHE PATH...` with nothing that starts with '-'. */
export function isBarePush(argv: readonly string[]): boolean {
  return argv.length >= 3 && argv[0] === 'push' && argv.every((arg) => !arg.startsWith('-'));
}

/** Runs a bare push as runCli would: the same command, context, flags, error report and exit code. */
export async function runBarePush(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    // No global option either: the context of the defaults (config, host and verbosity from the environment).
    const context = makeContext({}, io.env, io);
    const { run } = await import('../commands/push.js');
    await run(context, argv[1]!, argv.slice(2), { ...BARE_PUSH_FLAGS });
    return 0;
  } catch (error) {
    return report(error, false, io.stderr);
  }
}
