import { tmpdir } from 'node:os';

/**
 * The mode a spool file is opened with. In the shared temporary folder (TMPDIR, where NARs for
 * remote caches wait for their upload) a spool holds what may be a private cache's content, so
 * no other user may read it: 0600. One spooled inside a local cache becomes that cache's NAR by
 * rename, so it gets the mode any new file gets there (0666 less the umask), for the web server
 * or other users that read the cache.
 */
export function spoolFileMode(spoolDirectory: string): number {
  return spoolDirectory === temporaryDirectory() ? 0o600 : 0o666;
}

let temporary: string | undefined;

/**
 * tmpdir() once: it reads TMPDIR, TMP and TEMP afresh on every call, each read a handful of
 * system calls (Node checks the process's credentials first), and a push asks once per NAR.
 */
function temporaryDirectory(): string {
  temporary ??= tmpdir();
  return temporary;
}
