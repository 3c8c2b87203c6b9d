import { Option, type Command } from './commander.js';
import type { ActionOf } from './action.js';
import {
  compressionOptions,
  copyOptions,
  daemonClientOptions,
  daemonRunOptions,
  extrasOptions,
  selectionOptions,
  socketOption,
} from './shared-options.js';

/** Pushing: once, while watching the store or a command, and through the daemon. */
export function addPushCommands(program: Command, action: ActionOf): Command {
  extrasOptions(
    selectionOptions(
      compressionOptions(
        program
          .command('push')
          .description('push store paths and their closures to a cache (paths from stdin when none are given)')
          .argument('<cache>', 'cache name from the config, or a cache URL')
          .argument('[paths...]', 'store paths'),
      ),
    ),
  )
    .option('--no-closure', 'push exactly the paths given, not their closures')
    .option(
      '--with-build-deps',
      "also push what rebuilding them needs: the derivation closure of each path's deriver, with its valid outputs",
    )
    .option('-q, --quiet', 'print only failures and the closing summary line')
    .action(action(() => import('../commands/push.js')));

  extrasOptions(
    selectionOptions(
      compressionOptions(
        program
          .command('watch-store')
          .description('push every store path that becomes valid, until interrupted')
          .argument('<cache>', 'cache name or URL'),
      ),
    ),
  )
    .option('-q, --quiet', 'print only failures and the closing summary line')
    .action(action(() => import('../commands/watch-store.js')));

  extrasOptions(
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
          .option('-q, --quiet', 'print only failures and the closing summary line')
          .passThroughOptions(),
      ),
    ),
  ).action(action(() => import('../commands/watch-exec.js')));

  copyOptions(
    compressionOptions(
      program
        .command('copy')
        .description('copy store paths (everything the source lists when none are given) from one cache to another, checked')
        .argument('<source>', 'cache name or URL to copy from')
        .argument('<destination>', 'cache name or URL to copy to')
        .argument('[paths...]', 'store paths: their closures, as the source records them'),
    ),
  )
    .option('--no-sign', "do not add the destination's own signature (the source's signatures are kept)")
    .action(action(() => import('../commands/copy.js')));

  copyOptions(
    compressionOptions(
      program
        .command('import')
        .description('import the contents of a binary cache in S3 into a cachix cache (copy, checked)')
        .argument('<cache>', 'the cachix cache to import into')
        .argument('<s3-uri>', 'e.g. s3://mybucket?endpoint=https://myexample.com&region=eu-central-1'),
    ),
  ).action(action(() => import('../commands/import.js')));

  const daemon = program.command('daemon').description("a push daemon on a unix socket, fed by clients and by Nix's post-build-hook");

  daemonRunOptions(
    daemonClientOptions(
      extrasOptions(
        selectionOptions(
          compressionOptions(
            daemon
              .command('run')
              .description('push paths handed over by `daemon push` and the post-build-hook until stopped')
              .argument('<cache>', 'cache name or URL'),
          ),
        ),
      ),
    ),
  )
    .option('-q, --quiet', 'print only failures and the closing summary line')
    .action(action(() => import('../commands/daemon/run.js')));

  daemonClientOptions(
    daemon
      .command('push')
      .description('hand store paths to the running daemon (from stdin when none are given)')
      .argument('[paths...]', 'store paths')
      .option('--wait', 'follow their push to the end; exit 3 if any could not be pushed')
      .option('-q, --quiet', 'with --wait: print only failures and the closing summary line'),
  ).action(action(() => import('../commands/daemon/push.js')));

  daemonClientOptions(daemon.command('stop').description('let the daemon push what it has, print its totals, and exit')).action(
    action(() => import('../commands/daemon/stop.js')),
  );

  daemonClientOptions(
    daemon.command('doctor').description("ask the running daemon for its cache, its key and whether the cache's server accepts it"),
  ).action(action(() => import('../commands/daemon/doctor.js')));

  socketOption(
    daemon
      .command('post-build-hook')
      .description('hand the build Nix just finished (DRV_PATH, OUT_PATHS) to the daemon; prefer `daemon hook-script`'),
  ).action(action(() => import('../commands/daemon/post-build-hook.js')));

  socketOption(
    daemon.command('hook-script').description('print a post-build-hook sh script for the daemon (no Node start per build)'),
  ).action(action(() => import('../commands/daemon/hook-script.js')));

  return daemon;
}
