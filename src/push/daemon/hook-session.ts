// watch-exec --watch-mode post-build-hook: Nix hands each build of the command to us through a
// post-build-hook set for the command alone, so only the command's builds are pushed (store
// watching would also push whatever other processes build meanwhile).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PushDaemonCore } from './core.js';
import { prepareInbox, writeHookScript } from './hook.js';
import { HookInbox } from './inbox.js';
import type { PreparedPush } from '../prepare.js';
import { warnLine } from '../progress.js';
import type { QueueTotals } from '../watch/queue.js';
import { watchSummaryLine, type WatchSession } from '../watch/session.js';

export interface HookSession extends WatchSession {
  /** The environment for the command: NIX_CONFIG with our post-build-hook added. */
  childEnv: NodeJS.ProcessEnv;
}

export async function startHookSession(prepared: PreparedPush, storeDir: string, env: NodeJS.ProcessEnv): Promise<HookSession> {
  const { cacheName, cache, progress } = prepared;
  // What the queue, the watcher and the inbox say is a failure or a warning: --quiet keeps it.
  const log = (line: string): void => warnLine(progress, line);
  // mkdtemp makes it 0700: only we (and root, who runs Nix's builds) can put jobs in it.
  const dir = await mkdtemp(join(tmpdir(), 'cachix-hook-'));
  const inboxDir = join(dir, 'inbox');
  const scriptPath = join(dir, 'post-build-hook');
  await prepareInbox(inboxDir);
  await writeHookScript(scriptPath, inboxDir);
  const core = new PushDaemonCore(prepared, log);
  const inbox = new HookInbox(inboxDir, (jobs) => core.takeJobs(jobs), log);
  core.inbox = inbox;
  inbox.start();
  // A later line wins in NIX_CONFIG, so ours overrides a hook the user's own NIX_CONFIG sets.
  const nixConfig = [env.NIX_CONFIG, `post-build-hook = ${scriptPath}`].filter(Boolean).join('\n');
  return {
    storeDir,
    cacheName,
    progress,
    childEnv: { ...env, NIX_CONFIG: nixConfig },
    async finish(): Promise<QueueTotals> {
      inbox.close();
      await inbox.scan();
      const totals = await core.drain();
      progress.finish(watchSummaryLine(totals));
      await cache.close?.();
      await rm(dir, { recursive: true, force: true });
      return totals;
    },
    unpushed: () => core.unpushed,
  };
}
