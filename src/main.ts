import { runCli } from './cli.js';

// The process entry: the command line, environment and streams of this process.
process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
