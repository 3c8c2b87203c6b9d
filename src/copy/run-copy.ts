// `copy SRC DST [PATHS]` as one story: open both caches, pick the paths (everything the source
// lists, or the closures given), copy what the destination lacks, say how it went.
import type { Context } from '../context.js';
import { stopCleanlyOnSignal } from '../push/interrupt.js';
import type { PushTally } from '../push/push-options.js';
import { resolveStorePaths } from '../store/resolve-paths.js';
import { ExtrasCopier } from './copy-extras.js';
import { copyPaths, copySummaryLine } from './copy-paths.js';
import { prepareCopy, type CopyFlags } from './prepare-copy.js';
import { closuresOf, everythingListed, withoutIncompleteClosures } from './source-paths.js';

/** Exit code: 0 when every path is in the destination now, 1 when some could not be copied. */
export async function runCopy(
  context: Context,
  sourceName: string,
  destinationName: string,
  pathArgs: string[],
  flags: CopyFlags,
): Promise<number> {
  const roots = pathArgs.length > 0 ? await resolveStorePaths(pathArgs, context.storeDir) : undefined;
  const prepared = await prepareCopy(context, sourceName, destinationName, flags);
  const { progress, source, destination } = prepared;
  const tally: PushTally = { planned: 0, pushed: 0 };
  const stopHandling = stopCleanlyOnSignal(tally, context, () => progress.flush?.());
  try {
    const log = (line: string): void => progress.log(line);
    const selection = roots ? await closuresOf(source, roots) : await everythingListed(source, prepared.sourceName, log);
    for (const storePath of selection.absent) log(`error: ${storePath} is not in ${prepared.sourceName}`);
    for (const { name, problem } of selection.unreadable) log(`error: ${name} in ${prepared.sourceName} cannot be read: ${problem}`);
    const incomplete = roots ? withoutIncompleteClosures(selection) : [];
    for (const storePath of incomplete) log(`not copied: ${storePath} needs a path ${prepared.sourceName} cannot give (named above)`);
    const extras = extrasCopier(prepared, log, selection.rootNames);
    const summary = await copyPaths(prepared, selection, extras, tally);
    summary.failed += selection.absent.length + selection.unreadable.length + incomplete.length;
    progress.finish(copySummaryLine(summary, prepared.destinationName, extras?.copied));
    return summary.failed > 0 ? 1 : 0;
  } finally {
    progress.flush?.();
    stopHandling();
    await prepared.close();
  }

  function extrasCopier(copy: typeof prepared, log: (line: string) => void, rootNames?: ReadonlySet<string>): ExtrasCopier | undefined {
    if (!destination.putFile || destination.capabilities.signs === 'server') {
      log(`note: ${destination.description} has no route for build logs, listings or debug info: only narinfos and NARs are copied`);
      return undefined;
    }
    return new ExtrasCopier(
      copy.source,
      destination as ConstructorParameters<typeof ExtrasCopier>[1],
      copy.extraCompressions,
      log,
      rootNames,
    );
  }
}
