// Which paths a copy takes from the source cache, with their narinfos as the source records them:
// everything it lists, or the closures of the paths given, followed through each narinfo's
// References.
import type { BinaryCache } from '../caches/cache.js';
import { messageOf, UserError } from '../errors.js';
import { narInfoHashPart } from '../maintain/inventory.js';
import { parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';

/** Narinfos fetched at once while following references. */
const READ_CONCURRENCY = 32;

export interface SourcePath {
  hashPart: string;
  narInfo: NarInfo;
}

export interface SourceSelection {
  paths: Map<string, SourcePath>;
  /** Roots or references the source has no narinfo for: named, never copied. */
  absent: string[];
  /** Narinfos that could not be read or parsed, with why. */
  unreadable: Array<{ name: string; problem: string }>;
  /** Every file of the source's root, when it was listed: what else it holds beside narinfos (`.ls` listings). */
  rootNames?: ReadonlySet<string> | undefined;
}

/** A narinfo the source holds, parsed and checked to describe the path its name says. */
type NarInfoRead = { narInfo: NarInfo } | { absent: true } | { problem: string };

async function readNarInfo(source: BinaryCache, hashPart: string): Promise<NarInfoRead> {
  let text: string | undefined;
  try {
    text = await source.getNarInfo(hashPart);
  } catch (error) {
    return { problem: messageOf(error) };
  }
  if (text === undefined) return { absent: true };
  try {
    const narInfo = parseNarInfo(text);
    if (hashPartOf(narInfo.storePath) !== hashPart) throw new Error(`it describes ${narInfo.storePath}`);
    return { narInfo };
  } catch (error) {
    return { problem: messageOf(error) };
  }
}

/**
 * Every path the source lists: one listing of its root (no NAR listing, no sizes needed), each
 * narinfo read and parsed once. A source that cannot list asks for paths, in one line.
 */
export async function everythingListed(source: BinaryCache, sourceName: string, log: (line: string) => void): Promise<SourceSelection> {
  const cannotList = (why: string): UserError =>
    new UserError(
      `${source.description} cannot list its paths${why}, so there is no "everything" to copy from it`,
      `name the store paths to copy: cachix copy ${sourceName} DST /nix/store/...`,
    );
  if (!source.list) throw cannotList('');
  let rootNames: string[];
  try {
    rootNames = (await source.list('')).map((file) => file.name);
  } catch (error) {
    if (error instanceof UserError) throw cannotList(` (${error.message})`);
    throw error;
  }
  const hashParts = rootNames.map(narInfoHashPart).filter((hashPart): hashPart is string => hashPart !== undefined);
  if (hashParts.length > 1000) log(`reading ${hashParts.length} narinfos from ${source.description}`);
  const reads: NarInfoRead[] = new Array(hashParts.length);
  await forEachConcurrently(
    hashParts.map((_, index) => index),
    READ_CONCURRENCY,
    async (index) => void (reads[index] = await readNarInfo(source, hashParts[index]!)),
  );
  // In listing order, whatever order the reads finished in: the same source copies in the same order.
  const selection: SourceSelection = { paths: new Map(), absent: [], unreadable: [], rootNames: new Set(rootNames) };
  hashParts.forEach((hashPart, index) => {
    const read = reads[index]!;
    // Gone between the listing and the read (a gc of the source): simply not there.
    if ('absent' in read) return;
    if ('problem' in read) selection.unreadable.push({ name: `${hashPart}.narinfo`, problem: read.problem });
    else selection.paths.set(hashPart, { hashPart, narInfo: read.narInfo });
  });
  return selection;
}

/** The closures of `roots` as the source's narinfos record them. */
export async function closuresOf(source: BinaryCache, roots: readonly string[]): Promise<SourceSelection> {
  const selection: SourceSelection = { paths: new Map(), absent: [], unreadable: [] };
  const seen = new Set<string>();
  let frontier = roots.filter((path) => {
    const fresh = !seen.has(hashPartOf(path));
    seen.add(hashPartOf(path));
    return fresh;
  });
  while (frontier.length > 0) {
    const next: string[] = [];
    let index = 0;
    const worker = async (): Promise<void> => {
      while (index < frontier.length) {
        const storePath = frontier[index++]!;
        const hashPart = hashPartOf(storePath);
        const read = await readNarInfo(source, hashPart);
        if ('absent' in read) {
          selection.absent.push(storePath);
          continue;
        }
        if ('problem' in read) {
          selection.unreadable.push({ name: `${hashPart}.narinfo`, problem: read.problem });
          continue;
        }
        const { narInfo } = read;
        selection.paths.set(hashPart, { hashPart, narInfo });
        for (const reference of narInfo.references) {
          const referenceHash = hashPartOf(reference);
          if (seen.has(referenceHash)) continue;
          seen.add(referenceHash);
          next.push(reference);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, frontier.length) }, worker));
    frontier = next;
  }
  return selection;
}

/**
 * Takes out every path whose closure reaches one the source lacks or cannot give: copied, it
 * would name a reference the destination may not have. Returns the store paths taken out.
 */
export function withoutIncompleteClosures(selection: SourceSelection): string[] {
  const unavailable = new Set([
    ...selection.absent.map(hashPartOf),
    ...selection.unreadable.map(({ name }) => name.slice(0, name.indexOf('.'))),
  ]);
  const dropped: string[] = [];
  if (unavailable.size === 0) return dropped;
  for (let changed = true; changed;) {
    changed = false;
    for (const [hashPart, { narInfo }] of selection.paths) {
      if (!narInfo.references.some((reference) => unavailable.has(hashPartOf(reference)))) continue;
      selection.paths.delete(hashPart);
      unavailable.add(hashPart);
      dropped.push(narInfo.storePath);
      changed = true;
    }
  }
  return dropped;
}
