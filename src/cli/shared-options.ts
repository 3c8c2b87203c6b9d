import { Option, type Command } from './commander.js';
import { collect, intInRange, seconds, wholeNumber } from './option-parsers.js';

// Options several commands share: how NARs are compressed and uploaded, what to leave out, where
// `use` writes, which daemon socket.

const MIB = 1024 * 1024;

export function compressionOptions(command: Command): Command {
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
export function selectionOptions(command: Command): Command {
  return command
    .option(
      '--upstream-key <name>',
      "paths signed by this key are served upstream and not pushed (repeatable; adds to cache.nixos.org-1 or the cache's upstream_keys)",
      collect,
    )
    .option('--include-upstream', 'push paths signed by upstream keys too')
    .option('--exclude <regex>', 'do not push paths whose name matches (repeatable)', collect);
}

/** What Nix reads from a cache besides narinfos and NARs; also per cache in the config. */
export function extrasOptions(command: Command): Command {
  return command
    .option('--logs', "also upload the build log of each pushed path's deriver, when this store has one (log/<drv>)")
    .option('--listings', "also write each NAR's listing (<hash>.ls), for nix store ls and nix store cat")
    .option('--debug-info', 'also index debug symbols under lib/debug/.build-id (debuginfo/<build-id>), for dwarffs');
}

export function useOptions(command: Command): Command {
  return command
    .addOption(new Option('-m, --mode <mode>', 'where to write').choices(['nixos', 'root-nixconf', 'user-nixconf']))
    .option('-d, --nixos-folder <dir>', 'folder for NixOS modules', '/etc/nixos')
    .option('-O, --output-directory <dir>', 'write the files into this folder instead of the live config');
}

export function socketOption(command: Command): Command {
  return command.option(
    '--socket <path>',
    'the daemon socket (default: $CACHIX_DAEMON_SOCKET, $XDG_RUNTIME_DIR/cachix/cachix-daemon.sock)',
  );
}

/** How a copy trusts its source: the keys that sign it, or no check at all. */
export function copyOptions(command: Command): Command {
  return command
    .option(
      '--public-key <key>',
      "a key that signs the source (repeatable; default: the source's configured key, or the key its service publishes)",
      collect,
    )
    .option('--no-check-sigs', "copy paths without checking the source's signatures");
}

/** cachix's options of every daemon command: the socket and the client's keep-alive. */
export function daemonClientOptions(command: Command): Command {
  return socketOption(command)
    .option('--keep-alive-interval <seconds>', 'seconds between pings to the daemon; 0: none', wholeNumber('--keep-alive-interval', 0), 30)
    .option(
      '--keep-alive-timeout <seconds>',
      'seconds without an answer to a ping before the daemon is taken for stalled',
      wholeNumber('--keep-alive-timeout', 1),
      180,
    );
}

/** cachix's daemon options for how paths are looked up in the cache, and whether clients may stop it. */
export function daemonRunOptions(command: Command): Command {
  return command
    .option('--remote-stop', 'let clients stop the daemon (`daemon stop`); the default', true)
    .option('--no-remote-stop', 'refuse `daemon stop`: a service manager (systemd) stops the daemon with a signal')
    .option(
      '--narinfo-batch-size <n>',
      'paths whose closures are looked up in the cache together',
      wholeNumber('--narinfo-batch-size', 1),
      100,
    )
    .option(
      '--narinfo-batch-timeout <seconds>',
      'seconds the first path waits for others to join its lookup; 0: at once',
      seconds('--narinfo-batch-timeout'),
      0.5,
    )
    .option(
      '--narinfo-cache-ttl <seconds>',
      'seconds a path found in (or pushed to) the cache is not looked up again; 0: always look',
      seconds('--narinfo-cache-ttl'),
      300,
    )
    .option(
      '--narinfo-max-cache-size <n>',
      'paths remembered so, at most; 0: no limit but the time',
      wholeNumber('--narinfo-max-cache-size', 0),
      0,
    );
}
