// Reads the job files the post-build hook leaves in the daemon's inbox, turns them into store
// paths, and removes each file only once every path in it is settled (pushed or given up).
import { constants, watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { messageOf } from '../../errors.js';
import { isStorePath } from '../../nix/store-path.js';
import { validOutputsOf } from '../../store/derivations.js';
import { queryValidPaths } from '../../store/path-info.js';
import { printable } from '../../util/printable.js';
import { JOB_END } from './hook.js';

/** Job files read together, and the valid store paths they name (possibly none). */
export interface InboxJobs {
  names: string[];
  paths: string[];
}

/** A periodic look as well as inotify: a missed event costs at most this much delay. */
const RESCAN_MS = 2_000;
/** Jobs read at once: many builds finishing together are read and resolved in one go. */
const JOBS_PER_SCAN = 500;
/** A hook's job names one build's outputs: a few hundred bytes. */
const MAX_JOB_BYTES = 1 << 20;
/** A job file still without its last line after this long was cut off (the hook was killed). */
const INCOMPLETE_JOB_MS = 60_000;
/**
 * After a change in the inbox, wait this long so builds finishing close together are read and
 * pushed as one batch: each batch costs a few Nix processes, which compete with the builds (a
 * 50-build run took 1.09-1.13x its time without the hook at 0.5 s; see the README for 2 s).
 */
const SETTLE_MS = 2_000;

interface ParsedJob {
  name: string;
  drvs: string[];
  outs: string[];
}

function parseJob(name: string, text: string, log: (line: string) => void): ParsedJob {
  const job: ParsedJob = { name, drvs: [], outs: [] };
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (line.trim() === JOB_END) continue;
    const [kind, path] = line.trim().split(/\s+/, 2);
    if ((kind === 'drv' || kind === 'out') && path && isStorePath(path)) (kind === 'drv' ? job.drvs : job.outs).push(path);
    else log(`post-build-hook job ${printable(name)}: ignoring '${printable(line.slice(0, 200))}' (not a store path)`);
  }
  return job;
}

export class HookInbox {
  private readonly taken = new Set<string>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescan = false;
  private soon: NodeJS.Timeout | undefined;
  /** Job files seen without their last line: skipped until complete. */
  private readonly incomplete = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly onJobs: (jobs: InboxJobs) => Promise<void>,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    this.watcher = watch(this.dir, () => this.scanSoon());
    this.watcher.on('error', (error) => this.log(`watching ${this.dir} failed: ${messageOf(error)}; looking every ${RESCAN_MS / 1000} s`));
    this.timer = setInterval(() => void this.scan(), RESCAN_MS);
    this.timer.unref();
    void this.scan();
  }

  private scanSoon(): void {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.scan();
    }, SETTLE_MS);
  }

  /** Reads every job not yet taken; concurrent calls coalesce into one more pass. */
  scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescan = false;
        await this.scanOnce().catch((error: unknown) => this.log(`reading ${this.dir} failed: ${messageOf(error)}`));
      } while (this.rescan);
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /** Stops watching; a last scan is the caller's (to hand over what arrived before the stop). */
  close(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
  }

  /** The job's paths are all pushed or given up: its file goes. */
  async finish(name: string): Promise<void> {
    this.taken.delete(name);
    await unlink(join(this.dir, name)).catch(() => undefined);
  }

  private async scanOnce(): Promise<void> {
    for (;;) {
      const names = (await readdir(this.dir))
        .filter((name) => name.startsWith('job.') && !this.taken.has(name) && !this.incomplete.has(name))
        .slice(0, JOBS_PER_SCAN);
      if (names.length === 0) break;
      const jobs: ParsedJob[] = [];
      for (const name of names) {
        const text = await this.readJob(name);
        if (text === undefined) continue;
        if (!text.endsWith(`\n${JOB_END}\n`) && text !== `${JOB_END}\n`) {
          this.incomplete.add(name);
          continue;
        }
        this.taken.add(name);
        jobs.push(parseJob(name, text, this.log));
      }
      if (jobs.length > 0) await this.onJobs(await this.resolve(jobs));
    }
    await this.recheckIncomplete();
  }

  /**
   * A job file's text, or undefined for an entry that is not one. Opened without following a link
   * (which could point at any file the daemon may read) and without blocking (a FIFO would hold
   * the read, and every job after it, forever); only a small regular file is read.
   */
  private async readJob(name: string): Promise<string | undefined> {
    const path = join(this.dir, name);
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const info = await handle.stat();
      if (!info.isFile()) return await this.discard(name, 'is not a regular file');
      if (info.size > MAX_JOB_BYTES) return await this.discard(name, `is larger than ${MAX_JOB_BYTES} bytes`);
      return await handle.readFile('utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') return await this.discard(name, 'is a symbolic link');
      this.log(`post-build-hook job ${printable(name)}: cannot read it: ${messageOf(error)}`);
      return undefined;
    } finally {
      await handle?.close();
    }
  }

  /** An entry that no hook of ours writes: said once and removed, so it holds up nothing. */
  private async discard(name: string, why: string): Promise<undefined> {
    this.log(`post-build-hook job ${printable(name)} ${why}; removing it`);
    await unlink(join(this.dir, name)).catch(() => undefined);
    return undefined;
  }

  /** Incomplete files are looked at again on the next pass; one cut off long ago is removed. */
  private async recheckIncomplete(): Promise<void> {
    for (const name of [...this.incomplete]) {
      const info = await stat(join(this.dir, name)).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > INCOMPLETE_JOB_MS) {
        this.log(`post-build-hook job ${printable(name)} was never completed (the hook was killed?); removing it`);
        await unlink(join(this.dir, name)).catch(() => undefined);
      }
      // Forgotten either way: a complete file is read on the next pass, a removed one is gone.
      this.incomplete.delete(name);
    }
  }

  /** Outputs named by the hook when Nix gave them, else those of the derivations; valid ones only. */
  private async resolve(jobs: ParsedJob[]): Promise<InboxJobs> {
    const named = jobs.flatMap((job) => job.outs);
    // One nix-store call for all derivations: 50 builds finishing together cost one process, not 50.
    const drvs = [...new Set(jobs.filter((job) => job.outs.length === 0).flatMap((job) => job.drvs))];
    const outputs = await validOutputsOf(drvs).catch((error: unknown) => {
      this.log(`cannot ask Nix for the outputs of ${drvs.length} derivations: ${messageOf(error)}`);
      return [];
    });
    const wanted = [...new Set([...named, ...outputs])];
    const valid = new Set(await queryValidPaths(wanted));
    const dropped = wanted.filter((path) => !valid.has(path));
    if (dropped.length > 0) {
      const more = dropped.length > 1 ? ` and ${dropped.length - 1} more` : '';
      this.log(`post-build-hook: not pushing ${dropped[0]}${more}: not a valid path in the Nix store`);
    }
    if (wanted.length === 0)
      this.log(`post-build-hook: ${printable(jobs.map((job) => job.name).join(', '))} named no valid outputs; nothing to push`);
    return { names: jobs.map((job) => job.name), paths: wanted.filter((path) => valid.has(path)) };
  }
}
