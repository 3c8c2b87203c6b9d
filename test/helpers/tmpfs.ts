import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface SmallDisk {
  dir: string;
  cleanup(): Promise<void>;
}

/**
 * A real small file system: a tmpfs of `size` (e.g. '4m') mounted on a fresh directory. Needs
 * root (or CAP_SYS_ADMIN); when mounting is not permitted this fails saying so, never skips.
 */
export async function mountSmallTmpfs(size: string): Promise<SmallDisk> {
  const dir = await mkdtemp(join(tmpdir(), 'cachix-tmpfs-'));
  try {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    const stderr = String((error as { stderr?: string }).stderr ?? error).trim();
    throw new Error(
      `the disk-full test needs to mount a ${size} tmpfs (run the tests as root, or in a container with CAP_SYS_ADMIN): mount failed: ${stderr}`,
    );
  }
  return {
    dir,
    async cleanup() {
      await execFileAsync('umount', [dir]).catch(() => execFileAsync('umount', ['-l', dir]));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
