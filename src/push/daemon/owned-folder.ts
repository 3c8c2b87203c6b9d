// The daemon's folders (the socket's and the inbox): whoever can write one can queue paths for
// the daemon to sign and push, or put their own socket in its place. So each must belong to the
// daemon's user and be closed to others' writes; root's post-build-hook still writes the inbox
// (root passes any permission).
import { lstat, mkdir, stat } from 'node:fs/promises';
import { UserError } from '../../errors.js';
import { printable } from '../../util/printable.js';

const myUid = (): number => process.getuid?.() ?? 0;

/** `mkdir` that leaves an existing folder alone (for `checkOwnedFolder` to judge). */
export async function makeFolder(dir: string, options: { recursive: boolean; mode: number }): Promise<void> {
  try {
    await mkdir(dir, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/** Refuses a folder that is not ours or that others can write; `what` names it to the user. */
export async function checkOwnedFolder(dir: string, what: string): Promise<void> {
  const shown = printable(dir);
  const link = await lstat(dir);
  // A link made by someone else could be pointed elsewhere after we looked.
  if (link.isSymbolicLink() && link.uid !== myUid()) refuseForeign(shown, what, link.uid);
  const info = await stat(dir);
  if (!info.isDirectory()) {
    throw new UserError(`${what} ${shown} is not a folder`, 'remove it, or choose another socket with --socket PATH');
  }
  if (info.uid !== myUid()) refuseForeign(shown, what, info.uid);
  if ((info.mode & 0o022) !== 0) {
    throw new UserError(
      `${what} ${shown} can be written by other users (mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')})`,
      'anyone who can write there could hand the daemon paths to sign and push: use a folder only you can write (chmod go-w, or another --socket PATH)',
    );
  }
}

function refuseForeign(shown: string, what: string, uid: number): never {
  throw new UserError(
    `${what} ${shown} belongs to another user (uid ${uid})`,
    'the daemon takes jobs only from a folder of its own user: remove it, or choose a socket in a folder of your own with --socket PATH',
  );
}
