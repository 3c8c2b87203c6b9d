import { watch, type FSWatcher } from 'node:fs';
import { access } from 'node:fs/promises';
import { UserError, messageOf } from '../errors.js';
import { hashPartOf, parseStorePathBaseName } from '../nix/store-path.js';
import { RecentSet } from '../util/recent-set.js';

/*
 * What Nix 2.8 does in the store directory (watched with fs.watch, i.e. inotify, during
 * `nix-build`, `nix-store --add` and a failing build on this machine):
 *
 *   rename <h>-x.drv.lock  (created)   instantiation writes each .drv under its own lock,
 *   rename <h>-x.drv       (created)   then deletes the lock. Derivations are not outputs.
 *   rename <h>-x.drv.lock  (gone)
 *   rename <h>-x.lock      (created)   the output lock, held for the whole build
 *   rename <h>-x           (created)   the builder writes the output in place (sandbox = false)
 *   rename <h>-x.lock      (gone)      only after Nix registered <h>-x as valid
 *
 * `nix-store --add` and substitution follow the same lock / path / unlock pattern. A failed
 * build leaves both the lock file and the invalid output behind: no "gone" event, and the path
 * never turns valid. A later build reuses the stale lock file, so there is no "created" event
 * for it either, only the "gone" one at the end.
 *
 * So a lock disappearing is the signal, and Nix confirms validity (the database, not the
 * directory, is the truth). The path's own "created" event comes about a millisecond before
 * the unlock; it is also a candidate, so a path registered without a lock (or whose unlock we
 * miss) is still found: when it is not valid yet and its lock still exists we wait for the
 * unlock, and when there is no lock we look again a few times with growing delays.
 */

/** Names Nix puts in the store dir that are never store paths we should push. */
const IGNORED_SUFFIXES = ['.drv', '.chroot', '.check', '.tmp'];
/** Ask Nix about at most this many paths at once; the rest wait for the next round. */
const PATHS_PER_QUERY = 2000;
const RECHECK_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000];

export interface StoreWatcherOptions {
  storeDir: string;
  /** Of these store paths, the ones Nix has registered as valid. */
  queryValid(paths: string[]): Promise<string[]>;
  /**
   * Receives paths that just became valid. The watcher waits for it before asking Nix again,
   * so a slow consumer holds events back here (as names only) instead of growing without end.
   */
  onValidPaths(paths: string[]): Promise<void>;
  log(line: string): void;
  /** How long events are gathered before one `nix-store --check-validity` call. */
  intervalMs?: number;
  /** Names waiting to be checked, at most; beyond this new events are dropped with a warning. */
  maxCandidates?: number;
  /** How many emitted paths are remembered, so repeated events do not ask Nix again. */
  rememberPaths?: number;
}

/** The store base name (`<hash>-<name>`) an event is about, or undefined when it is none of ours. */
export function candidateBaseName(fileName: string): string | undefined {
  const base = fileName.endsWith('.lock') ? fileName.slice(0, -'.lock'.length) : fileName;
  if (base.startsWith('.') || IGNORED_SUFFIXES.some((suffix) => base.endsWith(suffix))) return undefined;
  try {
    parseStorePathBaseName(base);
    return base;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export class StoreWatcher {
  private readonly candidates = new Set<string>();
  /** Paths that appeared without a lock but were not valid yet: base name -> attempts, due time. */
  private readonly rechecks = new Map<string, { attempts: number; dueAt: number }>();
  private readonly emitted: RecentSet;
  private readonly intervalMs: number;
  private readonly maxCandidates: number;
  private fsWatcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;
  private droppedEvents = 0;

  constructor(private readonly options: StoreWatcherOptions) {
    this.intervalMs = options.intervalMs ?? 500;
    this.maxCandidates = options.maxCandidates ?? 100_000;
    this.emitted = new RecentSet(options.rememberPaths ?? 100_000);
  }

  start(): void {
    const { storeDir } = this.options;
    try {
      this.fsWatcher = watch(storeDir, { persistent: true }, (event, fileName) => {
        if (event === 'rename' && fileName) this.noticed(String(fileName));
      });
    } catch (error) {
      throw watchFailure(storeDir, error);
    }
    this.fsWatcher.on('error', (error) => this.options.log(`warning: watching ${storeDir} failed: ${messageOf(error)}`));
  }

  /** Stops watching, then checks what was already noticed, so nothing seen is left behind. */
  async close(): Promise<void> {
    this.closed = true;
    this.fsWatcher?.close();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.checking;
    for (const base of this.rechecks.keys()) this.candidates.add(base);
    this.rechecks.clear();
    while (this.candidates.size > 0) await this.check();
  }

  /** Names noticed but not yet confirmed or dropped (for the summary when stopping at once). */
  get waiting(): number {
    return this.candidates.size + this.rechecks.size;
  }

  private noticed(fileName: string): void {
    const base = candidateBaseName(fileName);
    if (base === undefined || this.emitted.has(hashPartOf(base))) return;
    if (this.candidates.size >= this.maxCandidates && !this.candidates.has(base)) {
      if (this.droppedEvents++ === 0) {
        this.options.log(`warning: ${this.maxCandidates} new paths are waiting to be pushed; ignoring new ones until the queue drains`);
      }
      return;
    }
    this.candidates.add(base);
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer || this.checking) return;
    let delay: number | undefined;
    if (this.candidates.size > 0) delay = this.intervalMs;
    for (const { dueAt } of this.rechecks.values()) delay = Math.min(delay ?? Infinity, Math.max(dueAt - Date.now(), 0));
    if (delay === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.checking = this.check().finally(() => {
        this.checking = undefined;
        this.schedule();
      });
    }, delay);
  }

  private takeBatch(): string[] {
    const now = Date.now();
    for (const [base, { dueAt }] of this.rechecks) {
      if (dueAt <= now) this.candidates.add(base);
    }
    const batch: string[] = [];
    for (const base of this.candidates) {
      if (batch.length >= PATHS_PER_QUERY) break;
      batch.push(base);
    }
    for (const base of batch) this.candidates.delete(base);
    return batch;
  }

  private async check(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    const { storeDir } = this.options;
    let valid: Set<string>;
    try {
      valid = new Set(await this.options.queryValid(batch.map((base) => `${storeDir}/${base}`)));
    } catch (error) {
      this.options.log(`warning: cannot ask Nix which paths are valid (${messageOf(error)}); trying again`);
      for (const base of batch) this.recheckLater(base);
      return;
    }
    const fresh: string[] = [];
    for (const base of batch) {
      const path = `${storeDir}/${base}`;
      if (valid.has(path)) {
        this.rechecks.delete(base);
        const hashPart = hashPartOf(base);
        if (!this.emitted.has(hashPart)) fresh.push(path);
        this.emitted.add(hashPart);
      } else if (!(await exists(`${path}.lock`)) && (await exists(path))) {
        // Still locked means still building: its unlock event brings it back. Gone means
        // deleted (garbage collected, failed build cleaned up): nothing to push.
        this.recheckLater(base);
      } else {
        this.rechecks.delete(base);
      }
    }
    if (fresh.length > 0) await this.options.onValidPaths(fresh);
  }

  private recheckLater(base: string): void {
    const attempts = (this.rechecks.get(base)?.attempts ?? 0) + 1;
    const delay = RECHECK_DELAYS_MS[attempts - 1];
    if (delay === undefined || this.closed) {
      this.rechecks.delete(base);
      return;
    }
    this.rechecks.set(base, { attempts, dueAt: Date.now() + delay });
  }
}

function watchFailure(storeDir: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new UserError(`cannot watch ${storeDir}: it does not exist`, 'is Nix installed? set NIX_STORE_DIR if your store is elsewhere');
  if (code === 'ENOSPC') {
    return new UserError(
      `cannot watch ${storeDir}: the inotify watch limit is reached`,
      'raise it: sysctl fs.inotify.max_user_watches=524288',
    );
  }
  return new UserError(`cannot watch ${storeDir}: ${messageOf(error)}`);
}

/** Starts watching the store for paths that become valid (see the notes at the top). */
export function watchStore(options: StoreWatcherOptions): StoreWatcher {
  const watcher = new StoreWatcher(options);
  watcher.start();
  return watcher;
}
