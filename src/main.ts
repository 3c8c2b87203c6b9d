import { runEntry } from './entry.js';
import { guardOutput } from './util/closed-output.js';

// The process entry: the command line, environment and streams of this process.
// Where every result and log of the process is written: a reader that goes away (`| head`) ends
// no command with a stack trace.
const stdout = guardOutput(process.stdout);
guardOutput(process.stderr);
const io = { env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
const exitCode = await runEntry(process.argv.slice(2), io);
// A write's error arrives as an event after the write: let it come before judging.
await new Promise((resolve) => setImmediate(resolve));
const stdoutFailure = stdout.failure();
if (stdoutFailure && exitCode === 0) {
  process.stderr.write(`cachix: cannot write the results to stdout: ${stdoutFailure.message}\n`);
  process.exitCode = 1;
} else {
  process.exitCode = exitCode;
}
