// What the push daemon and `watch-exec --watch-mode post-build-hook` share: paths handed over
// (by clients or the hook's inbox) go into one bounded, batching, retrying push queue; clients
// that subscribed hear each path of their request's closure (cachix's push events) and, once all
// are settled, PushFinished; inbox files go once theirs are.
import { hashPartOf, isStorePath } from '../../nix/store-path.js';
import { queryClosure } from '../../store/closure.js';
import { queryValidPaths } from '../../store/path-info.js';
import { RecentSet } from '../../util/recent-set.js';
import { TtlSet } from '../../util/ttl-set.js';
import { messageOf } from '../../errors.js';
import type { HookInbox, InboxJobs } from './inbox.js';
import { pushPaths } from '../pipeline.js';
import type { PreparedPush } from '../prepare.js';
import type { Progress } from '../progress.js';
import { PushQueue, type QueueTotals } from '../watch/queue.js';
import type { PushEventMessage } from './protocol.js';

/** cachix's --narinfo-* options: how requests are batched, and how long a path found in the cache is trusted to be there. */
export interface NarinfoQueryOptions {
  /** Paths whose closures are looked up in the cache together (cachix's default: 100). */
  batchSize: number;
  /** Seconds the first path waits for others to join its batch (cachix's default: 0.5). */
  batchTimeoutSeconds: number;
  /** Seconds a path found in (or pushed to) the cache is not asked about again; 0: always ask. */
  cacheTtlSeconds: number;
  /** Paths remembered so, at most; 0: no limit but the time. */
  maxCacheSize: number;
}

/** The daemon's defaults are cachix's; watch-exec's hook session keeps the queue's own batches. */
export const CACHIX_NARINFO_OPTIONS: NarinfoQueryOptions = {
  batchSize: 100,
  batchTimeoutSeconds: 0.5,
  cacheTtlSeconds: 300,
  maxCacheSize: 0,
};

/** One client's request: the hash parts of its closure (whose events it hears) and of its paths still unsettled. */
interface Request {
  closure: Map<string, string>;
  remaining: Set<string>;
  /** Hash parts that had their last word (done, skipped, failed). */
  reported: Set<string>;
  anyFailed: boolean;
  finished: boolean;
  emit(event: PushEventMessage): void;
  resolve(): void;
}

/** A group of inbox files and the hash parts still unsettled in it. */
interface JobGroup {
  names: string[];
  remaining: Set<string>;
  anyFailed: boolean;
}

export class PushDaemonCore {
  private readonly queue: PushQueue;
  /** hash part -> requests hearing its events (the closure), requests waiting for it (their paths), job groups holding it. */
  private readonly listeners = new Map<string, Set<Request>>();
  private readonly waiting = new Map<string, Set<Request>>();
  private readonly groups = new Map<string, Set<JobGroup>>();
  /** Upload attempts of a path someone listens to, for PushStorePathAttempt's retryCount. */
  private readonly attempts = new Map<string, number>();
  /** Recently given-up hash parts and why, so a late request still hears that its path failed. */
  private readonly recentlyFailed = new RecentSet(10_000);
  private readonly failureReasons = new Map<string, string>();
  private readonly knownPresent: TtlSet | undefined;
  private readonly admitting = new Set<Promise<void>>();
  inbox: HookInbox | undefined;

  constructor(prepared: PreparedPush, log: (line: string) => void, narinfo?: NarinfoQueryOptions) {
    const { cache, progress } = prepared;
    this.knownPresent =
      narinfo && narinfo.cacheTtlSeconds > 0 ? new TtlSet(narinfo.cacheTtlSeconds * 1000, narinfo.maxCacheSize) : undefined;
    const pushOptions = { ...prepared.pushOptions, knownPresent: this.knownPresent };
    const events = this.eventsThrough(progress);
    this.queue = new PushQueue({
      push: (paths) => pushPaths(cache, paths, pushOptions, events),
      stillValid: queryValidPaths,
      log,
      onSettled: (paths, failed, reason) => this.settled(paths, failed, reason),
      ...(narinfo && { batchSize: narinfo.batchSize, batchWaitMs: narinfo.batchTimeoutSeconds * 1000 }),
    });
  }

  get totals(): QueueTotals {
    return this.queue.totals;
  }

  get unpushed(): number {
    return this.queue.unpushed;
  }

  /** Queues paths (waiting while the queue is full), and hears nothing more of them. */
  submit(paths: string[]): Promise<void> {
    return this.admit(async () => this.queue.add(await queryValidPaths(paths.filter((path) => isStorePath(path)))));
  }

  /** A request is taken in (Nix asked about its paths, then queued) before a drain may start: a stop never loses one. */
  private async admit<T>(work: () => Promise<T>): Promise<T> {
    const admitted = work();
    const settled = admitted.then(
      () => undefined,
      () => undefined,
    );
    this.admitting.add(settled);
    try {
      return await admitted;
    } finally {
      this.admitting.delete(settled);
    }
  }

  /**
   * Queues paths and reports on each path of their closure through `emit`, from PushStarted to
   * PushFinished (exactly once); resolves after PushFinished.
   */
  async request(paths: string[], emit: (event: PushEventMessage) => void): Promise<void> {
    const request = await this.admit(() => this.takeRequest(paths, emit));
    this.finishIfSettled(request.request);
    return request.done;
  }

  /** Asks Nix about the paths and their closure, and queues them; the request hears from here on. */
  private async takeRequest(paths: string[], emit: (event: PushEventMessage) => void): Promise<{ request: Request; done: Promise<void> }> {
    emit({ tag: 'PushStarted' });
    const storePaths = paths.filter((path) => isStorePath(path));
    for (const path of paths) if (!isStorePath(path)) emit({ tag: 'PushStorePathInvalid', contents: [path, 'not a store path'] });
    const valid = new Set(await queryValidPaths(storePaths));
    for (const path of storePaths)
      if (!valid.has(path)) emit({ tag: 'PushStorePathInvalid', contents: [path, 'not a valid path in the Nix store'] });
    const request: Request = {
      closure: new Map(),
      remaining: new Set([...valid].map(hashPartOf)),
      reported: new Set(),
      anyFailed: false,
      finished: false,
      emit,
      resolve: () => undefined,
    };
    const done = new Promise<void>((resolve) => (request.resolve = resolve));
    if (valid.size > 0) {
      try {
        for (const path of (await queryClosure([...valid])).paths) request.closure.set(hashPartOf(path), path);
      } catch (error) {
        // Collected between the two questions: said per path, as cachix does for a path it cannot push.
        for (const path of valid) emit({ tag: 'PushStorePathFailed', contents: [path, messageOf(error)] });
        request.anyFailed = true;
        request.remaining.clear();
      }
    }
    for (const hashPart of request.closure.keys()) addTo(this.listeners, hashPart, request);
    for (const hashPart of request.remaining) addTo(this.waiting, hashPart, request);
    await this.queue.add([...valid]);
    // Paths pushed (or given up) moments ago are not queued again, and no settle event will come for them.
    for (const path of valid) {
      if (this.queue.isQueued(path)) continue;
      const hashPart = hashPartOf(path);
      const failed = this.recentlyFailed.has(hashPart);
      this.settled([path], failed ? [path] : [], this.failureReasons.get(hashPart));
    }
    return { request, done };
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
    for (const path of jobs.paths) if (!this.queue.isQueued(path)) this.settled([path], []);
  }

  /** Pushes everything queued (and what requests being taken in bring) and resolves with the totals. */
  async drain(): Promise<QueueTotals> {
    while (this.admitting.size > 0) await Promise.all(this.admitting);
    return this.queue.drain();
  }

  /** The daemon's Progress: the terminal's, with each path's events passed to the requests that hear it. */
  private eventsThrough(progress: Progress): Progress {
    const tell = (path: string, event: PushEventMessage, final: boolean): void => {
      const hashPart = hashPartOf(path);
      for (const request of this.listeners.get(hashPart) ?? []) {
        if (request.reported.has(hashPart)) continue;
        if (final) request.reported.add(hashPart);
        request.emit(event);
      }
    };
    return {
      start: (paths, bytes) => progress.start(paths, bytes),
      log: (line) => progress.log(line),
      warn: (line) => (progress.warn ? progress.warn(line) : progress.log(line)),
      finish: (line) => progress.finish(line),
      flush: () => progress.flush?.(),
      narBytesRead: (bytes) => progress.narBytesRead?.(bytes),
      pathStarted: (path, narSize) => {
        const hashPart = hashPartOf(path);
        if (!this.listeners.has(hashPart)) return;
        const retryCount = this.attempts.get(hashPart) ?? 0;
        this.attempts.set(hashPart, retryCount + 1);
        tell(path, { tag: 'PushStorePathAttempt', contents: [path, narSize, { retryCount }] }, false);
      },
      pathProgress: (path, cumulative, delta) => {
        if (this.listeners.has(hashPartOf(path))) tell(path, { tag: 'PushStorePathProgress', contents: [path, cumulative, delta] }, false);
      },
      pathDone: (path, narSize, fileSize, streamedBytes = 0) => {
        progress.pathDone(path, narSize, fileSize, streamedBytes);
        const hashPart = hashPartOf(path);
        this.knownPresent?.add(hashPart);
        if (!this.listeners.has(hashPart)) return;
        this.attempts.delete(hashPart);
        // A NAR prepared on the small-NAR pool is read there: its bytes are said at once.
        if (streamedBytes < narSize)
          tell(path, { tag: 'PushStorePathProgress', contents: [path, narSize, narSize - streamedBytes] }, false);
        tell(path, { tag: 'PushStorePathDone', contents: path }, true);
      },
      pathsSkipped: (paths) => {
        for (const path of paths)
          if (this.listeners.has(hashPartOf(path))) tell(path, { tag: 'PushStorePathSkipped', contents: path }, true);
      },
    };
  }

  private settled(paths: string[], failed: string[], reason = 'push failed'): void {
    const failedSet = new Set(failed);
    for (const path of paths) {
      const hashPart = hashPartOf(path);
      const pathFailed = failedSet.has(path);
      if (pathFailed) {
        this.recentlyFailed.add(hashPart);
        this.failureReasons.set(hashPart, reason);
        if (this.failureReasons.size > 10_000) this.failureReasons.delete(this.failureReasons.keys().next().value as string);
        for (const request of this.listeners.get(hashPart) ?? []) {
          request.anyFailed = true;
          if (request.reported.has(hashPart)) continue;
          request.reported.add(hashPart);
          request.emit({ tag: 'PushStorePathFailed', contents: [path, reason] });
        }
      }
      for (const request of takeAll(this.waiting, hashPart)) {
        request.anyFailed ||= pathFailed;
        request.remaining.delete(hashPart);
        this.finishIfSettled(request);
      }
      for (const group of takeAll(this.groups, hashPart)) {
        group.remaining.delete(hashPart);
        group.anyFailed ||= pathFailed;
        // A job with a path given up stays in the inbox: the next daemon tries it again.
        if (group.remaining.size === 0 && !group.anyFailed) for (const name of group.names) void this.inbox?.finish(name);
      }
    }
  }

  /**
   * Once every path of the request is settled: the closure paths that heard nothing (pushed for
   * another request, or moments ago) are in the cache, so skipped; then PushFinished, once.
   */
  private finishIfSettled(request: Request): void {
    if (request.finished || request.remaining.size > 0) return;
    request.finished = true;
    for (const [hashPart, path] of request.closure) {
      if (!request.anyFailed && !request.reported.has(hashPart)) request.emit({ tag: 'PushStorePathSkipped', contents: path });
      const listening = this.listeners.get(hashPart);
      listening?.delete(request);
      if (listening?.size === 0) {
        this.listeners.delete(hashPart);
        this.attempts.delete(hashPart);
      }
    }
    request.emit({ tag: 'PushFinished' });
    request.resolve();
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
