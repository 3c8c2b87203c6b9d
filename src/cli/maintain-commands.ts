import type { Command } from './commander.js';
import type { ActionOf } from './action.js';
import { collect, wholeNumber } from './option-parsers.js';

/** Looking after a cache: verify, info, pins, gc, delete. */
export function addMaintainCommands(program: Command, action: ActionOf): void {
  program
    .command('verify')
    .description('fetch narinfos and NARs back from a cache and check signatures, NAR hashes and listings as Nix would')
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
    .option('--file-hash', "also hash each NAR file as stored and check the narinfo's FileHash (unsigned; Nix never checks it)")
    .action(action(() => import('../commands/verify.js')));

  program
    .command('doctor')
    .description('check the whole chain for each cache: config, server, token, key, writes, clock, and whether Nix will use it')
    .argument('[store-path]', 'also check that this store path is in the cache')
    .option('--cache <name>', 'check only this cache (a configured name or a URL)')
    .option('--json', 'print an array of {cache, check, status, message, hint}')
    .option('--read-only', 'do not write the test file that checks the cache takes writes')
    .action(action(() => import('../commands/doctor.js')));

  program
    .command('sign')
    .description(
      "add the cache's current key's signature to every narinfo that lacks it (after generate-keypair --rotate); --drop removes a retired key's",
    )
    .argument('<cache>', 'cache name')
    .option('--drop <keyname>', "remove this retired key's signatures, and stop trusting it")
    .action(action(() => import('../commands/sign.js')));

  program
    .command('info')
    .description('what a cache holds: paths, sizes, compression, push dates, pins, and a consistency check')
    .argument('<cache>', 'cache name or URL')
    .option('--json', 'print JSON, for scripts')
    .action(action(() => import('../commands/info.js')));

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
    .action(action(() => import('../commands/pin/index.js')));

  program
    .command('gc')
    .description('delete from the cache what no pin keeps and was not pushed recently; referrers before references')
    .argument('<cache>', 'cache name or URL')
    .option('--older-than <duration>', 'keep paths pushed more recently than this (0, 45m, 12h, 30d, 2w)')
    .option('--max-size <size>', 'then keep the newest paths that fit in this size (500M, 10G)')
    .option('--grace <duration>', 'NARs no narinfo names are deleted only when older than this (default 1h)')
    .option('--dry-run', 'list what would be deleted; change nothing')
    .option(
      '--accept-pin-gaps',
      "run even when a pin's closure lacks a narinfo: what lay below the gap goes unless something else keeps it",
    )
    .action(action(() => import('../commands/gc.js')));

  program
    .command('delete')
    .description('delete store paths from the cache; refuses paths others refer to unless --recursive')
    .argument('<cache>', 'cache name or URL')
    .argument('<paths...>', 'store paths')
    .option('-r, --recursive', 'delete the paths that refer to them too')
    .option('--dry-run', 'list what would be deleted (referrers first); change nothing')
    .action(action(() => import('../commands/delete.js')));
}
