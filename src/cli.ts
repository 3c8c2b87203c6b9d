import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
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

/** A whole number within [min, max], or a usage error naming the flag (cachix checks these when parsing). */
function intInRange(name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return parsed;
  };
}

const MIB = 1024 * 1024;

/** Where a run's results and logs go, and the environment it sees: the process's, or a test's. */
export interface CliIo extends ContextStreams {
  env: NodeJS.ProcessEnv;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The commander program for one run: built afresh, so a test can run several in one process. */
function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('cachix')
    .description('A cachix-compatible client for Nix binary caches: file://, http(s)://, s3:// and the cachix.org API.')
    .version('0.1.0', '-V, --version')
    .option('-c, --config <file>', "config file (default: $XDG_CONFIG_HOME/cachix/config.toml); a FILE.dhall is cachix's own config")
    .option('--host <url>', 'cachix API host for cachix caches (default: https://cachix.org)')
    .option('--hostname <url>', 'the same as --host (cachix accepts both)')
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
      .option(
        '-l, --compression-level <level>',
        'compression level: cachix caches 0-16 (xz 0-9), default 2, as cachix; other caches zstd 1-19 (default 3), xz 0-9 (default 6)',
        wholeNumber('--compression-level', 0),
      )
      .option(
        '-s, --chunk-size <bytes>',
        'size of each uploaded part for cachix API caches, 5 MiB to 5 GiB (default: 32 MiB)',
        intInRange('--chunk-size', 5 * MIB, 5 * 1024 * MIB),
      )
      .option(
        '-n, --num-concurrent-chunks <n>',
        'parts of one NAR uploaded at once to cachix API caches (default: 4); memory is about jobs x n x chunk size at worst',
        intInRange('--num-concurrent-chunks', 1, 1000),
      )
      .option('-j, --jobs <n>', 'store paths uploaded at once', wholeNumber('--jobs', 1), 8)
      .option('--omit-deriver', 'do not write the Deriver field in narinfos');
  }

  /** What to leave out: paths an upstream cache serves, and --exclude patterns. */
  function selectionOptions(command: Command): Command {
    return command
      .option(
        '--upstream-key <name>',
        "paths signed by this key are served upstream and not pushed (repeatable; adds to cache.nixos.org-1 or the cache's upstream_keys)",
        collect,
      )
      .option('--include-upstream', 'push paths signed by upstream keys too')
      .option('--exclude <regex>', 'do not push paths whose name matches (repeatable)', collect);
  }

  program
    .command('authtoken')
    .description('store the auth token for the cachix API, or with --cache/--server for one cache or attic server (0600)')
    .argument('[token]', 'the token (prefer --stdin, so it stays out of shell history)')
    .option('--stdin', 'read the token from standard input')
    .option('--server <host>', 'store it for one attic server (host[:port] of its cache URLs) instead of for all caches')
    .option('--cache <name>', "store it as this configured cache's own token (the only stored token an HTTP cache is sent)")
    .action(action(() => import('./commands/authtoken.js')));

  program
    .command('generate-keypair')
    .description(
      'make a new ed25519 signing key for a cache and store it in the config; for a cachix API cache, register its public key with the service and print the secret once',
    )
    .argument('<name>', 'cache name')
    .option('--key-name <keyname>', 'name inside the key (default: <name>-1); not for cachix caches, whose keys the service names')
    .action(action(() => import('./commands/generate-keypair.js')));

  program
    .command('create')
    .description('create a cache: signing key, nix-cache-info and a config entry (a local file:// cache by default)')
    .argument('<name>', 'cache name')
    .option('--url <url>', 'file:///dir, http(s)://host/path, s3://bucket?region=..&endpoint=.., or cachix:NAME')
    .option('--key-name <keyname>', 'name inside the signing key (default: <name>-1)')
    .option('--priority <n>', 'Priority in nix-cache-info (lower is preferred)', wholeNumber('--priority', 0), 41)
    .option('--no-signing-key', 'register the cache without making a signing key (for caches someone else signs)')
    .option('--force', 'on a URL that already holds a cache: reset its nix-cache-info and make a new key')
    .action(action(() => import('./commands/create.js')));

  selectionOptions(
    compressionOptions(
      program
        .command('push')
        .description('push store paths and their closures to a cache (paths from stdin when none are given)')
        .argument('<cache>', 'cache name from the config, or a cache URL')
        .argument('[paths...]', 'store paths'),
    ),
  )
    .option('--no-closure', 'push exactly the paths given, not their closures')
    .option(
      '--with-build-deps',
      "also push what rebuilding them needs: the derivation closure of each path's deriver, with its valid outputs",
    )
    .action(action(() => import('./commands/push.js')));

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
    .option(
      '--upstream-key <name>',
      'a path signed by this key and absent from the cache is reported as served upstream (repeatable)',
      collect,
    )
    .option('--include-upstream', 'fail paths signed by upstream keys that the cache lacks, too')
    .action(action(() => import('./commands/verify.js')));

  selectionOptions(
    compressionOptions(
      program
        .command('watch-store')
        .description('push every store path that becomes valid, until interrupted')
        .argument('<cache>', 'cache name or URL'),
    ),
  ).action(action(() => import('./commands/watch-store.js')));

  program
    .command('info')
    .description('what a cache holds: paths, sizes, compression, push dates, pins, and a consistency check')
    .argument('<cache>', 'cache name or URL')
    .option('--json', 'print JSON, for scripts')
    .action(action(() => import('./commands/info.js')));

  program
    .command('pin')
    .description('pin a store path under a name so gc keeps its closure: in the cache itself, or through the cachix API; --list, --delete')
    .argument('<cache>', 'cache name or URL')
    .argument('[pin-name]', 'the pin')
    .argument('[store-path]', 'the store path to pin (a new revision of the pin)')
    .option('--keep-revisions <n>', 'keep the newest N revisions of this pin', wholeNumber('--keep-revisions', 1))
    .option('--keep-days <n>', 'keep revisions pinned in the last N days', wholeNumber('--keep-days', 0))
    .option('--keep-forever', 'keep every revision (the default for a new pin)')
    .option(
      '-a, --artifact <path>',
      'cachix API caches: a file inside the store path to offer for download (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .option('--list', 'list the pins of the cache')
    .option('--delete', 'delete the pin (its paths go at the next gc unless something else keeps them)')
    .action(action(() => import('./commands/pin/index.js')));

  program
    .command('gc')
    .description('delete from the cache what no pin keeps and was not pushed recently; referrers before references')
    .argument('<cache>', 'cache name or URL')
    .option('--older-than <duration>', 'keep paths pushed more recently than this (0, 45m, 12h, 30d, 2w)')
    .option('--max-size <size>', 'then keep the newest paths that fit in this size (500M, 10G)')
    .option('--grace <duration>', 'NARs no narinfo names are deleted only when older than this (default 1h)')
    .option('--dry-run', 'list what would be deleted; change nothing')
    .action(action(() => import('./commands/gc.js')));

  program
    .command('delete')
    .description('delete store paths from the cache; refuses paths others refer to unless --recursive')
    .argument('<cache>', 'cache name or URL')
    .argument('<paths...>', 'store paths')
    .option('-r, --recursive', 'delete the paths that refer to them too')
    .action(action(() => import('./commands/delete.js')));

  selectionOptions(
    compressionOptions(
      program
        .command('watch-exec')
        .description('run a command and push every store path built while it runs; exits with its code')
        .argument('<cache>', 'cache name or URL')
        .argument('<command>', 'the command')
        .argument('[args...]', 'its arguments')
        .addOption(
          new Option(
            '--watch-mode <mode>',
            'how builds are noticed: Nix post-build-hook, store watching, or auto (the hook when Nix honours it)',
          )
            .choices(['auto', 'store', 'post-build-hook'])
            .default('auto'),
        )
        .passThroughOptions(),
    ),
  ).action(action(() => import('./commands/watch-exec.js')));

  const configCommand = program.command('config').description("settings in the config file; and cachix's own config, moved over");
  configCommand
    .command('get')
    .description('print a setting')
    .addArgument(new Argument('<key>', 'the setting').choices(['hostname']))
    .action(action(() => import('./commands/config/hostname.js').then((module) => ({ run: module.get }))));
  configCommand
    .command('set')
    .description('change a setting')
    .addArgument(new Argument('<key>', 'the setting').choices(['hostname']))
    .argument('<value>', 'the new value')
    .action(action(() => import('./commands/config/hostname.js').then((module) => ({ run: module.set }))));
  configCommand
    .command('import')
    .description(
      "copy the token, hostname and signing keys from cachix's cachix.dhall into this config (0600); cachix.dhall is left as it is",
    )
    .argument('[file]', 'the cachix.dhall to read (default: $XDG_CONFIG_HOME/cachix/cachix.dhall, or -c FILE.dhall)')
    .action(action(() => import('./commands/config/import.js')));

  const daemon = program.command('daemon').description("a push daemon on a unix socket, fed by clients and by Nix's post-build-hook");
  const socketOption = (command: Command): Command =>
    command.option('--socket <path>', 'the daemon socket (default: $CACHIX_DAEMON_SOCKET, $XDG_RUNTIME_DIR/cachix/cachix-daemon.sock)');

  socketOption(
    selectionOptions(
      compressionOptions(
        daemon
          .command('run')
          .description('push paths handed over by `daemon push` and the post-build-hook until stopped')
          .argument('<cache>', 'cache name or URL'),
      ),
    ),
  ).action(action(() => import('./commands/daemon/run.js')));

  socketOption(
    daemon
      .command('push')
      .description('hand store paths to the running daemon (from stdin when none are given)')
      .argument('[paths...]', 'store paths')
      .option('--wait', 'wait until they are pushed; exit 1 if any could not be'),
  ).action(action(() => import('./commands/daemon/push.js')));

  socketOption(daemon.command('stop').description('let the daemon push what it has, print its totals, and exit')).action(
    action(() => import('./commands/daemon/stop.js')),
  );

  socketOption(
    daemon
      .command('post-build-hook')
      .description('hand the build Nix just finished (DRV_PATH, OUT_PATHS) to the daemon; prefer `daemon hook-script`'),
  ).action(action(() => import('./commands/daemon/post-build-hook.js')));

  socketOption(
    daemon.command('hook-script').description('print a post-build-hook sh script for the daemon (no Node start per build)'),
  ).action(action(() => import('./commands/daemon/hook-script.js')));

  // `--verbose` is accepted after the command too (`cachix push --verbose ...`), as users type it.
  for (const command of [...program.commands, ...configCommand.commands, ...daemon.commands]) {
    if (command !== configCommand) command.option('-v, --verbose', 'show details and stack traces');
  }
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
