import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { makeContext, type Context, type ContextStreams } from './context.js';
import { EXIT_USAGE, UserError } from './errors.js';
import { redactSecrets } from './redact.js';

// Commands are imported only when run, so `cachix --help` loads commander and nothing heavy.
type Loader = () => Promise<{ run: (context: Context, ...args: never[]) => Promise<number | void> }>;

/** A whole number of at least `min`: `--jobs 0` would push nothing and wait forever. */
function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`${name} must be a whole number of at least ${min}`);
    return parsed;
  };
}

/** Where a run's results and logs go, and the environment it sees: the process's, or a test's. */
export interface CliIo extends ContextStreams {
  env: NodeJS.ProcessEnv;
}

/** The commander program for one run: built afresh, so a test can run several in one process. */
function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('cachix')
    .description('A cachix-compatible client for Nix binary caches: file://, http(s)://, s3:// and the cachix.org API.')
    .version('0.1.0', '-V, --version')
    .option('-c, --config <file>', 'config file (default: $XDG_CONFIG_HOME/cachix/config.toml)')
    .option('--host <url>', 'cachix API host for cachix caches (default: https://cachix.org)')
    .option('-v, --verbose', 'show details and stack traces')
    .showHelpAfterError('(run cachix --help for usage)')
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .exitOverride()
    .enablePositionalOptions();

  function action(load: Loader) {
    return async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      const context = makeContext(command.optsWithGlobals(), io.env, io);
      const module = await load();
      const result = await module.run(context, ...(args.slice(0, -1) as never[]));
      setExitCode(typeof result === 'number' ? result : 0);
    };
  }

  function compressionOptions(command: Command): Command {
    return command
      .addOption(new Option('-m, --compression-method <method>', 'NAR compression').choices(['zstd', 'xz', 'none']))
      .option('-l, --compression-level <level>', 'compression level (zstd 1-19, xz 0-9)', wholeNumber('--compression-level', 0))
      .option('-j, --jobs <n>', 'store paths uploaded at once', wholeNumber('--jobs', 1), 8)
      .option('--omit-deriver', 'do not write the Deriver field in narinfos');
  }

  program
    .command('authtoken')
    .description('store the auth token for cachix API and HTTP caches (0600); read from stdin with --stdin')
    .argument('[token]', 'the token (prefer --stdin, so it stays out of shell history)')
    .option('--stdin', 'read the token from standard input')
    .option('--server <host>', 'store it for one attic server (host[:port] of its cache URLs) instead of for all caches')
    .action(action(() => import('./commands/authtoken.js')));

  program
    .command('generate-keypair')
    .description("make a new ed25519 signing key for a cache, in Nix's key format, and store it in the config")
    .argument('<name>', 'cache name')
    .option('--key-name <keyname>', 'name inside the key (default: <name>-1)')
    .action(action(() => import('./commands/generate-keypair.js')));

  program
    .command('create')
    .description('create a cache: signing key, nix-cache-info and a config entry (a local file:// cache by default)')
    .argument('<name>', 'cache name')
    .option('--url <url>', 'file:///dir, http(s)://host/path, s3://bucket?region=..&endpoint=.., or cachix:NAME')
    .option('--key-name <keyname>', 'name inside the signing key (default: <name>-1)')
    .option('--priority <n>', 'Priority in nix-cache-info (lower is preferred)', wholeNumber('--priority', 0), 41)
    .option('--no-signing-key', 'register the cache without making a signing key (for caches someone else signs)')
    .action(action(() => import('./commands/create.js')));

  compressionOptions(
    program
      .command('push')
      .description('push store paths and their closures to a cache (paths from stdin when none are given)')
      .argument('<cache>', 'cache name from the config, or a cache URL')
      .argument('[paths...]', 'store paths'),
  ).action(action(() => import('./commands/push.js')));

  function useOptions(command: Command): Command {
    return command
      .addOption(new Option('-m, --mode <mode>', 'where to write').choices(['nixos', 'root-nixconf', 'user-nixconf']))
      .option('-d, --nixos-folder <dir>', 'folder for NixOS modules', '/etc/nixos')
      .option('-O, --output-directory <dir>', 'write the files into this folder instead of the live config');
  }

  useOptions(
    program
      .command('use')
      .description('make Nix use a cache: add it as a substituter with its public key')
      .argument('<cache>', 'cache name')
      .option('--public-key <key>', 'the public key to trust (pins it: a different key from the server is refused)'),
  ).action(action(() => import('./commands/use.js')));

  useOptions(
    program
      .command('remove')
      .description('undo `cachix use`: remove the substituter and key it added')
      .argument('<cache>', 'cache name')
      .option('--public-key <key>', 'the key to remove, for a cache given by URL with no config entry'),
  ).action(action(() => import('./commands/remove.js')));

  program
    .command('verify')
    .description('fetch narinfos and NARs back from a cache and check signatures and hashes against the local store')
    .argument('<cache>', 'cache name or URL')
    .argument('<paths...>', 'store paths')
    .option('--public-key <key>', 'the key to check signatures against (default: the configured or pinned key)')
    .option('-r, --recursive', 'check the closure of each path, as `nix store verify -r` does')
    .action(action(() => import('./commands/verify.js')));

  compressionOptions(
    program
      .command('watch-store')
      .description('push every store path that becomes valid, until interrupted')
      .argument('<cache>', 'cache name or URL'),
  ).action(action(() => import('./commands/watch-store.js')));

  compressionOptions(
    program
      .command('watch-exec')
      .description('run a command and push every store path built while it runs; exits with its code')
      .argument('<cache>', 'cache name or URL')
      .argument('<command>', 'the command')
      .argument('[args...]', 'its arguments')
      .passThroughOptions(),
  ).action(action(() => import('./commands/watch-exec.js')));

  // `--verbose` is accepted after the command too (`cachix push --verbose ...`), as users type it.
  for (const command of program.commands) command.option('-v, --verbose', 'show details and stack traces');
  return program;
}

function report(error: unknown, verbose: boolean, stderr: CliIo['stderr']): number {
  if (error instanceof UserError) {
    stderr.write(`cachix: ${redactSecrets(error.message)}\n`);
    if (error.hint) stderr.write(`  ${redactSecrets(error.hint)}\n`);
    if (verbose && error.cause) stderr.write(redactSecrets(String((error.cause as Error).stack ?? error.cause)) + '\n');
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`cachix: ${redactSecrets(message)}\n`);
  if (verbose) stderr.write(redactSecrets(String((error as Error).stack ?? '')) + '\n');
  else stderr.write('  (run with --verbose for details)\n');
  return 1;
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
