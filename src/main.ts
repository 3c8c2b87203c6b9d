import { plainPushPaths } from './cli/plain-push.js';

// The process entry: the command line, environment and streams of this process.
const argv = process.argv.slice(2);
const earlyPushPaths = plainPushPaths(argv, process.env);
if (earlyPushPaths) (await import('./store/early-closure.js')).startClosureEarly(earlyPushPaths);
const { runCli } = await import('./cli.js');
process.exitCode = await runCli(argv, {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
