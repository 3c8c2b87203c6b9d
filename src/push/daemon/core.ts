// What the push daemon and `watch-exec --watch-mode post-build-hook` share: paths handed over
// (by clients or the hook's inbox) go into one bounded, batching, retrying push queue; clients
// that asked to wait hear when their paths are settled; inbox files go once theirs are.
import { hashPartOf } from '../../nix/store-path.js';
import { queryValidPaths } from '../../store/path-info.js';
import { RecentSet } from '../../util/recent-set.js';
import type { HookInbox, InboxJobs } from './inbox.js';
import { pushPaths } from '../pipeline.js';
import type { PreparedPush } from '../prepare.js';
import { PushQueue, type QueueTotals } from '../watch/queue.js';

interface Waiter {
  remaining: Set<string>;
  failed: string[];
  resolve(failed: string[]): void;
}

/** A group of inbox files and the hash parts still unsettled in it. */
interface JobGroup {
  names: string[];
  remaining: Set<string>;
  anyFailed: boolean;
}

export class PushDaemonCore {
  private readonly queue: PushQueue;
  /** hash part -> clients waiting for it and job groups holding it. */
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly groups = new Map<string, Set<JobGroup>>();
  /** Recently given-up hash parts, so a late `--wait` still hears that its path failed. */
  private readonly recentlyFailed = new RecentSet(10_000);
  inbox: HookInbox | undefined;

  constructor(prepared: PreparedPush, log: (line: string) => void) {
    const { cache, pushOptions, progress } = prepared;
    this.queue = new PushQueue({
      push: (paths) => pushPaths(cache, paths, pushOptions, progress),
      stillValid: queryValidPaths,
      log,
      onSettled: (paths, failed) => this.settled(paths, failed),
    });
  }

  get totals(): QueueTotals {
    return this.queue.totals;
  }

  get unpushed(): number {
    return this.queue.unpushed;
  }

  /** Queues paths (waiting while the queue is full); with `wait`, resolves to those that failed once all are settled. */
  async submit(paths: string[], wait: boolean): Promise<string[]> {
    await this.queue.add(paths);
    if (!wait) return [];
    const remaining = new Set(paths.filter((path) => this.queue.isQueued(path)).map(hashPartOf));
    const failed = paths.filter((path) => !remaining.has(hashPartOf(path)) && this.recentlyFailed.has(hashPartOf(path)));
    if (remaining.size === 0) return failed;
    return new Promise((resolve) => {
      const waiter: Waiter = { remaining, failed, resolve };
      for (const hashPart of remaining) addTo(this.waiters, hashPart, waiter);
    });
  }

  /** Inbox files are removed once every path in them is settled; a killed daemon leaves them for the next. */
  async takeJobs(jobs: InboxJobs): Promise<void> {
    if (jobs.paths.length === 0) {
      for (const name of jobs.names) await this.inbox?.finish(name);
      return;
    }
    const group: JobGroup = { names: jobs.names, remaining: new Set(jobs.paths.map(hashPartOf)), anyFailed: false };
    for (const hashPart of group.remaining) addTo(this.groups, hashPart, group);
    await this.queue.add(jobs.paths);
    // Paths pushed moments ago are not queued again, and no settle event will come for them.
    for (const path of jobs.paths) if (!this.queue.isQueued(path)) this.settled([path], []);
  }

  /** Pushes everything queued and resolves with the totals. */
  drain(): Promise<QueueTotals> {
    return this.queue.drain();
  }

  private settled(paths: string[], failed: string[]): void {
    const failedSet = new Set(failed);
    for (const path of paths) {
      const hashPart = hashPartOf(path);
      if (failedSet.has(path)) this.recentlyFailed.add(hashPart);
      for (const waiter of takeAll(this.waiters, hashPart)) {
        if (failedSet.has(path)) waiter.failed.push(path);
        waiter.remaining.delete(hashPart);
        if (waiter.remaining.size === 0) waiter.resolve(waiter.failed);
      }
      for (const group of takeAll(this.groups, hashPart)) {
        group.remaining.delete(hashPart);
        group.anyFailed ||= failedSet.has(path);
        // A job with a path given up stays in the inbox: the next daemon tries it again.
        if (group.remaining.size === 0 && !group.anyFailed) for (const name of group.names) void this.inbox?.finish(name);
      }
    }
  }
}

function addTo<T>(map: Map<string, Set<T>>, key: string, value: T): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function takeAll<T>(map: Map<string, Set<T>>, key: string): Set<T> {
  const set = map.get(key) ?? new Set<T>();
  map.delete(key);
  return set;
}
