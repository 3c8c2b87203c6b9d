import { Argument, type Command } from './commander.js';
import type { ActionOf } from './action.js';
import { wholeNumber } from './option-parsers.js';
import { useOptions } from './shared-options.js';

/** Setting up: tokens, keys, caches, and making Nix use them. */
export function addSetupCommands(program: Command, action: ActionOf): Command {
  program
    .command('authtoken')
    .description('store the auth token for the cachix API, or with --cache/--server for one cache or attic server (0600)')
    .argument('[token]', 'the token (prefer --stdin, so it stays out of shell history)')
    .option('--stdin', 'read the token from standard input')
    .option('--server <host>', 'store it for one attic server (host[:port] of its cache URLs) instead of for all caches')
    .option('--cache <name>', "store it as this configured cache's own token (the only stored token an HTTP cache is sent)")
    .action(action(() => import('../commands/authtoken.js')));

  program
    .command('generate-keypair')
    .description(
      'make a new ed25519 signing key for a cache and store it in the config; for a cachix API cache, register its public key with the service and print the secret once',
    )
    .argument('<name>', 'cache name')
    .option('--key-name <keyname>', 'name inside the key (default: <name>-1); not for cachix caches, whose keys the service names')
    .option('--rotate', 'replace the current key with a new one (NAME-2, ...), keeping the old one trusted until `sign --drop`')
    .action(action(() => import('../commands/generate-keypair.js')));

  program
    .command('create')
    .description('create a cache: signing key, nix-cache-info and a config entry (a local file:// cache by default)')
    .argument('<name>', 'cache name')
    .option('--url <url>', 'file:///dir, http(s)://host/path, s3://bucket?region=..&endpoint=.., attic+https://host/CACHE, or cachix:NAME')
    .option('--key-name <keyname>', 'name inside the signing key (default: <name>-1)')
    .option('--priority <n>', 'Priority in nix-cache-info (lower is preferred)', wholeNumber('--priority', 0), 41)
    .option('--no-signing-key', 'register the cache without making a signing key (for caches someone else signs)')
    .option('--force', 'on a URL that already holds a cache: reset its nix-cache-info and make a new key')
    .action(action(() => import('../commands/create.js')));

  useOptions(
    program
      .command('use')
      .description('make Nix use a cache: add it as a substituter with its public key')
      .argument('<cache>', 'cache name')
      .option('--public-key <key>', 'the public key to trust (pins it: a different key from the server is refused)'),
  ).action(action(() => import('../commands/use.js')));

  useOptions(
    program
      .command('remove')
      .description('undo `cachix use`: remove the substituter and key it added')
      .argument('<cache>', 'cache name')
      .option('--public-key <key>', 'the key to remove, for a cache given by URL with no config entry'),
  ).action(action(() => import('../commands/remove.js')));

  const configCommand = program.command('config').description("settings in the config file; and cachix's own config, moved over");
  configCommand
    .command('get')
    .description('print a setting')
    .addArgument(new Argument('<key>', 'the setting').choices(['hostname']))
    .action(action(() => import('../commands/config/hostname.js').then((module) => ({ run: module.get }))));
  configCommand
    .command('set')
    .description('change a setting')
    .addArgument(new Argument('<key>', 'the setting').choices(['hostname']))
    .argument('<value>', 'the new value')
    .action(action(() => import('../commands/config/hostname.js').then((module) => ({ run: module.set }))));
  configCommand
    .command('import')
    .description(
      "copy the token, hostname and signing keys from cachix's cachix.dhall into this config (0600); cachix.dhall is left as it is",
    )
    .argument('[file]', 'the cachix.dhall to read (default: $XDG_CONFIG_HOME/cachix/cachix.dhall, or -c FILE.dhall)')
    .action(action(() => import('../commands/config/import.js')));

  return configCommand;
}
