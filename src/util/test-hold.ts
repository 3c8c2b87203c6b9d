// Named points where a test can stop this process, to force an interleaving with another process
// that timing reaches only by luck (a push writing between a gc's listing and its deleting).
// Inert unless CACHIX_TEST_HOLD names the point: `CACHIX_TEST_HOLD=gc-deleting:/tmp/holds`.
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * At a point named in CACHIX_TEST_HOLD (`POINT[,POINT...]:DIR`): writes `DIR/POINT.<pid>.held`,
 * then waits until `DIR/POINT.go` exists. Anywhere else: returns at once.
 */
export async function holdIfAsked(point: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const setting = env.CACHIX_TEST_HOLD;
  if (!setting) return;
  const separator = setting.indexOf(':');
  if (separator < 0 || !setting.slice(0, separator).split(',').includes(point)) return;
  const directory = setting.slice(separator + 1);
  await writeFile(join(directory, `${point}.${process.pid}.held`), '');
  for (;;) {
    try {
      await access(join(directory, `${point}.go`));
      return;
    } catch {
      await sleep(20);
    }
  }
}
