import { Command, CommanderError } from './cli/commander.js';
import type { ActionOf } from './cli/action.js';
import { addMaintainCommands } from './cli/maintain-commands.js';
import { addPushCommands } from './cli/push-commands.js';
import { addSetupCommands } from './cli/setup-commands.js';
import { makeContext } from './context.js';
import { EXIT_USAGE } from './errors.js';
import { report, type CliIo } from './cli/report.js';
import { VERSION_LINE } from './cli/version.js';

export type { CliIo } from './cli/report.js';

/** The commander program for one run: built afresh, so a test can run several in one process. */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('cachix')
    .description(
      'A cachix-compatible client for Nix binary caches: file://, http(s):// (WebDAV PUT), s3://, attic (attic+https://) and the cachix.org API.',
    )
    .version(VERSION_LINE, '-V, --version')
    .option('-c, --config <file>', "config file (default: $XDG_CONFIG_HOME/cachix/config.toml); a FILE.dhall is cachix's own config")
    .option('--host <url>', 'cachix API host for cachix caches (default: https://cachix.org)')
    .option('--hostname <url>', 'the same as --host (cachix accepts both)')
    .option('-v, --verbose', 'show details and stack traces')
    .showHelpAfterError('(run cachix --help for usage)')
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .exitOverride()
    .enablePositionalOptions();

  const action: ActionOf =
    (load) =>
    async (...args) => {
      const command = args[args.length - 1] as Command;
      const context = makeContext(command.optsWithGlobals(), io.env, io);
      const module = await load();
      const result = await module.run(context, ...(args.slice(0, -1) as never[]));
      setExitCode(typeof result === 'number' ? result : 0);
    };

  const configCommand = addSetupCommands(program, action);
  const daemon = addPushCommands(program, action);
  addMaintainCommands(program, action);

  // `--verbose` is accepted after the command too (`cachix push --verbose ...`), as users type it.
  for (const command of [...program.commands, ...configCommand.commands, ...daemon.commands]) {
    if (command !== configCommand) command.option('-v, --verbose', 'show details and stack traces');
  }
  return program;
}

/** Runs one command line (`argv` without node and the script) and returns its exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  let exitCode = 0;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    return report(error, verbose, io.stderr);
  }
}
