import { isBarePush, runBarePush } from './cli/bare-push.js';
import { plainPushPaths } from './cli/plain-push.js';
import type { CliIo } from './cli/report.js';

/**
 * One command line, as the process entry runs it: a plain push starts Nix's closure query (and
 * the first path's dump) before anything else loads, and a bare push skips the parser. Returns
 * the exit code.
 */
export async function runEntry(argv: readonly string[], io: CliIo): Promise<number> {
  const earlyPushPaths = plainPushPaths(argv, io.env);
  const early = earlyPushPaths ? await import('./store/early-closure.js') : undefined;
  early?.startClosureEarly(earlyPushPaths!);
  try {
    return earlyPushPaths && isBarePush(argv) ? await runBarePush(argv, io) : await (await import('./cli.js')).runCli(argv, io);
  } finally {
    early?.dropEarlyWork();
  }
}
