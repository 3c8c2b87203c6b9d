// Which paths a copy takes from the source cache, with their narinfos as the source records them:
// everything it lists, or the closures of the paths given, followed through each narinfo's
// References.
import type { BinaryCache } from '../caches/cache.js';
import { UserError } from '../errors.js';
import { takeInventory } from '../maintain/inventory.js';
import { parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import { hashPartOf } from '../nix/store-path.js';
import { messageOf } from '../errors.js';

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
}

/** Every path the source lists: a source that cannot list asks for paths, in one line. */
export async function everythingListed(source: BinaryCache, sourceName: string, log: (line: string) => void): Promise<SourceSelection> {
  const cannotList = (why: string): UserError =>
    new UserError(
      `${source.description} cannot list its paths${why}, so there is no "everything" to copy from it`,
      `name the store paths to copy: cachix copy ${sourceName} DST /nix/store/...`,
    );
  if (!source.list) throw cannotList('');
  let inventory;
  try {
    inventory = await takeInventory(source as BinaryCache & { list: NonNullable<BinaryCache['list']> }, { log, keepTexts: true });
  } catch (error) {
    // Unreadable narinfos are collected, not thrown: what is thrown is the listing itself failing.
    if (error instanceof UserError) throw cannotList(` (${error.message})`);
    throw error;
  }
  const paths = new Map<string, SourcePath>();
  const { paths: table, texts } = inventory;
  for (const row of table.rows()) {
    const hashPart = table.hashPart(row);
    paths.set(hashPart, { hashPart, narInfo: parseNarInfo(texts!.get(row)) });
  }
  return { paths, absent: [], unreadable: inventory.unreadable };
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
        let text: string | undefined;
        try {
          text = await source.getNarInfo(hashPart);
        } catch (error) {
          selection.unreadable.push({ name: `${hashPart}.narinfo`, problem: messageOf(error) });
          continue;
        }
        if (text === undefined) {
          selection.absent.push(storePath);
          continue;
        }
        let narInfo: NarInfo;
        try {
          narInfo = parseNarInfo(text);
          if (hashPartOf(narInfo.storePath) !== hashPart) throw new Error(`it describes ${narInfo.storePath}`);
        } catch (error) {
          selection.unreadable.push({ name: `${hashPart}.narinfo`, problem: messageOf(error) });
          continue;
        }
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
