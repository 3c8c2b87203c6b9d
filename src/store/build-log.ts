import { execFile } from 'node:child_process';

/**
 * The build log Nix kept for a derivation, as `nix-store --read-log` gives it (Nix decompresses
 * its .bz2 itself), or undefined when this store has none: substituted paths have no log.
 */
export function readBuildLog(drvPath: string): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    execFile('nix-store', ['--read-log', drvPath], { encoding: 'buffer', maxBuffer: 1 << 30 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error('nix-store is not on PATH'));
      // "build log of derivation '...' is not available": no log is no error.
      if (/not available|does not exist|is not valid/.test(stderr.toString())) return resolve(undefined);
      reject(new Error(`nix-store --read-log ${drvPath} failed: ${stderr.toString().trim()}`));
    });
  });
}
