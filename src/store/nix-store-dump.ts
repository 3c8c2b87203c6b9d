import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { opendir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { UserError } from '../errors.js';

// `nix-store --dump PATH`, Nix's own walk, as a stream. Ours (nar-dump.ts) goes through Node's
// bindings for every readdir, open, fstat, read and close, about 10 µs of CPU per entry more than
// Nix's C++; nix-store costs a process (10–30 ms of CPU) and a copy through a pipe (0.7–1 ms of
// CPU per MB). So for a tree of many small entries (a node_modules, a site-packages, a share/doc)
// Nix's walk is cheaper, and for a few big files ours.

/**
 * Below this average, per entry, the pipe costs less than our per-entry overhead. At 4 KiB it
 * already costs more: eight paths of 7,540 entries averaging 4.3 KiB, pushed among big NARs, took
 * 1–2 s longer (and more CPU) through the pipe than through our walk, which hashes off the main
 * thread.
 */
const NIX_BYTES_PER_ENTRY = 2 << 10;
/** Fewer entries than this would not pay for starting nix-store. */
export const NIX_MIN_ENTRIES = 1024;
/** The count reads directories on the caller's thread: never more than this many entries. */
export const NIX_MAX_ENTRIES = 16384;
const SLASH = Buffer.from('/');
/** Entries read per call when counting off the caller's thread. */
const COUNT_BATCH = 512;
const STDERR_LIMIT = 4096;

/**
 * Whether the tree at `path` has more than `limit` entries, counted from its directory listings
 * alone and only until the answer is known; anything unreadable counts as nothing (the dump
 * itself will report it).
 */
export function hasMoreEntriesThan(path: string, limit: number): boolean {
  const directories: Buffer[] = [Buffer.from(path)];
  let entries = 0;
  for (let directory = directories.pop(); directory; directory = directories.pop()) {
    let listing;
    try {
      listing = readdirSync(directory, { encoding: 'buffer', withFileTypes: true });
    } catch {
      continue;
    }
    entries += listing.length;
    if (entries > limit) return true;
    for (const dirent of listing) if (dirent.isDirectory()) directories.push(Buffer.concat([directory, SLASH, dirent.name]));
  }
  return false;
}

/**
 * How many entries a tree with `narSize` bytes of NAR must have for Nix's walk to be the cheaper;
 * undefined for a NAR too large to count (over 256 MiB): counting would hold up the caller's
 * thread, and the pipe's cost on that many bytes rivals what Nix's walk could save.
 */
export function nixDumpEntryLimit(narSize: number): number | undefined {
  const limit = Math.max(NIX_MIN_ENTRIES, Math.floor(narSize / NIX_BYTES_PER_ENTRY));
  return limit > NIX_MAX_ENTRIES ? undefined : limit;
}

/** Whether `nix-store --dump` is the cheaper walk of store path `path`, of `narSize` bytes of NAR. */
export function nixDumpIsCheaper(path: string, narSize: number): boolean {
  const limit = nixDumpEntryLimit(narSize);
  return limit !== undefined && hasMoreEntriesThan(path, limit);
}

/**
 * hasMoreEntriesThan off the caller's thread: the entries of the tree at `path`, counted up to
 * one past `limit` at most (`onPassing` is told once the count passes `passing`). Directories are
 * read a batch of entries at a time, so a folder of fifty thousand files tells as soon as the
 * first batches pass, not after all of them.
 */
export async function countEntriesUpTo(path: string, limit: number, passing = limit, onPassing?: () => void): Promise<number> {
  const directories: Buffer[] = [Buffer.from(path)];
  let entries = 0;
  let told = false;
  for (let directory = directories.pop(); directory; directory = directories.pop()) {
    let listing;
    try {
      // Names as raw bytes (Node reads them so, though its types say only text encodings).
      listing = await opendir(directory as unknown as string, { encoding: 'buffer' as BufferEncoding, bufferSize: COUNT_BATCH });
    } catch {
      continue;
    }
    try {
      for await (const dirent of listing) {
        entries++;
        if (!told && entries > passing) {
          told = true;
          onPassing?.();
        }
        if (entries > limit) return entries;
        if (dirent.isDirectory()) directories.push(Buffer.concat([directory, SLASH, dirent.name as unknown as Buffer]));
      }
    } catch {
      // unreadable halfway: what was counted stands (the dump itself will report it)
    } finally {
      await listing.close().catch(() => undefined);
    }
  }
  return entries;
}

/** A running `nix-store --dump`: its NAR as it comes, and a way to stop it unread. */
export interface RunningDump {
  /** The NAR, from the first byte; iterable once. Stopping early stops nix-store. */
  chunks: AsyncGenerator<Buffer>;
  /** Stops nix-store if it still runs (the dump is not wanted after all). */
  stop(): void;
  /** Bytes read from the pipe and not yet taken. */
  heldBytes(): number;
}

export interface DumpStartOptions {
  /**
   * Bytes read ahead of the caller and held in memory; nix-store waits once they are held. Ahead
   * of the pipe's own 64 KiB, it lets Nix walk while the caller compresses, or before it asks.
   */
  readAheadBytes: number;
  /** Until the chunks are asked for, nix-store keeps this process alive only if this is true. */
  keepAlive: boolean;
}

/** Read ahead of a caller that asks at once: enough to decouple Nix's walk from our compression. */
const READ_AHEAD_BYTES = 4 << 20;

/**
 * The NAR of `path` from `nix-store --dump`, in the pieces the pipe delivers (up to 64 KiB). The
 * caller's pace is nix-store's, a few MiB ahead at most: memory stays bounded.
 */
export function nixStoreDump(path: string): AsyncGenerator<Buffer> {
  return startNixStoreDump(path, { readAheadBytes: READ_AHEAD_BYTES, keepAlive: true }).chunks;
}

/** Starts `nix-store --dump path` now; its output is read into memory up to `readAheadBytes`. */
export function startNixStoreDump(path: string, options: DumpStartOptions): RunningDump {
  const child = spawn('nix-store', ['--dump', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = child.stdout as Socket;
  const stderrStream = child.stderr as Socket;
  let stderr = '';
  stderrStream.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  const exited = new Promise<string | undefined>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code === 0 ? undefined : signal ? `killed by ${signal}` : `exit ${code}`));
  });
  exited.catch(() => undefined);
  const held: Buffer[] = [];
  let heldBytes = 0;
  let ended = false;
  let wake: (() => void) | undefined;
  const woken = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  stdout.on('data', (chunk: Buffer) => {
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= options.readAheadBytes) stdout.pause();
    woken();
  });
  const finished = (): void => {
    ended = true;
    woken();
  };
  stdout.on('end', finished).on('close', finished);
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const stop = (): void => {
    if (running()) child.kill();
    stdout.destroy();
  };
  const setAlive = (alive: boolean): void => {
    for (const handle of [child, stdout, stderrStream]) {
      if (alive) handle.ref();
      else handle.unref();
    }
  };
  if (!options.keepAlive) setAlive(false);
  async function* chunks(): AsyncGenerator<Buffer> {
    setAlive(true);
    try {
      for (;;) {
        const chunk = held.shift();
        if (chunk) {
          heldBytes -= chunk.length;
          if (stdout.isPaused() && heldBytes < options.readAheadBytes) stdout.resume();
          yield chunk;
          continue;
        }
        if (ended) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const failure = await exited.catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
        throw new UserError('cannot run nix-store: it is not on PATH', 'install Nix (https://nixos.org/download) or fix PATH');
      });
      if (failure) throw new Error(`nix-store --dump ${path} failed: ${stderr.trim() || failure}`);
    } finally {
      // A caller that stopped early: nix-store would go on walking until its next write fails.
      stop();
    }
  }
  return { chunks: chunks(), stop, heldBytes: () => heldBytes };
}
