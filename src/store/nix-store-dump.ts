import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
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
const NIX_MIN_ENTRIES = 1024;
/** The count reads directories on the caller's thread: never more than this many entries. */
const NIX_MAX_ENTRIES = 16384;
const SLASH = Buffer.from('/');
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

/** Whether `nix-store --dump` is the cheaper walk of store path `path`, of `narSize` bytes of NAR. */
export function nixDumpIsCheaper(path: string, narSize: number): boolean {
  const limit = Math.max(NIX_MIN_ENTRIES, Math.floor(narSize / NIX_BYTES_PER_ENTRY));
  // Past this (a NAR over 256 MiB) counting would hold up the caller's thread, and the pipe's
  // cost on that many bytes rivals what Nix's walk could save.
  if (limit > NIX_MAX_ENTRIES) return false;
  return hasMoreEntriesThan(path, limit);
}

/**
 * The NAR of `path` from `nix-store --dump`, in the pieces the pipe delivers (up to 64 KiB). The
 * caller's pace is nix-store's: it waits on a full pipe, so memory stays at a few pieces.
 */
export async function* nixStoreDump(path: string): AsyncGenerator<Buffer> {
  const child = spawn('nix-store', ['--dump', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  const exited = new Promise<string | undefined>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code === 0 ? undefined : signal ? `killed by ${signal}` : `exit ${code}`));
  });
  exited.catch(() => undefined);
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    const failure = await exited.catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      throw new UserError('cannot run nix-store: it is not on PATH', 'install Nix (https://nixos.org/download) or fix PATH');
    });
    if (failure) throw new Error(`nix-store --dump ${path} failed: ${stderr.trim() || failure}`);
  } finally {
    // A caller that stopped early: nix-store would go on walking until its next write fails.
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}
