import type { Context } from '../context.js';
import type { CopyFlags } from '../copy/prepare-copy.js';

/** `cachix copy SRC DST [PATHS...]`: exit 1 when some path could not be copied (each is named). */
export async function run(context: Context, source: string, destination: string, paths: string[], flags: CopyFlags): Promise<number> {
  const { runCopy } = await import('../copy/run-copy.js');
  return runCopy(context, source, destination, paths, flags);
}
