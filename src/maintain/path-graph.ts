// Closures and referrers over a PathTable's rows: marks in typed arrays rather than sets of
// hash-part strings, so walking a million-path cache costs bytes a path.
import type { PathTable } from './path-table.js';

/** For each row, the present rows whose narinfo lists it as a reference (itself excluded), as compressed rows. */
export class Referrers {
  private readonly start: Uint32Array;
  private readonly list: Uint32Array;

  constructor(paths: PathTable) {
    const counts = new Uint32Array(paths.count + 1);
    for (const row of paths.rows()) for (const target of paths.references(row)) if (target !== row) counts[target]!++;
    this.start = new Uint32Array(paths.count + 1);
    for (let row = 0; row < paths.count; row++) this.start[row + 1] = this.start[row]! + counts[row]!;
    this.list = new Uint32Array(this.start[paths.count]!);
    const filled = this.start.slice(0, paths.count);
    for (const row of paths.rows()) for (const target of paths.references(row)) if (target !== row) this.list[filled[target]!++] = row;
  }

  of(row: number): Uint32Array {
    return this.list.subarray(this.start[row]!, this.start[row + 1]!);
  }
}

/**
 * Adds to `marks` (1 = in) the closures of `roots` within the present rows, skipping references
 * the table lacks and rows already marked (whose closure, marked with them, is in already).
 * Returns the rows it added, in the order a depth-first walk reached them.
 */
export function addClosure(paths: PathTable, roots: Iterable<number>, marks: Uint8Array): number[] {
  const added: number[] = [];
  const stack: number[] = [];
  for (const root of roots) if (root >= 0 && paths.isPresent(root)) stack.push(root);
  while (stack.length > 0) {
    const row = stack.pop()!;
    if (marks[row] === 1) continue;
    marks[row] = 1;
    added.push(row);
    for (const target of paths.references(row)) if (marks[target] !== 1 && paths.isPresent(target)) stack.push(target);
  }
  return added;
}

/** The closure of `roots` (hash parts) within the present rows, in the order reached. */
export function closureOf(paths: PathTable, roots: Iterable<string>): number[] {
  return addClosure(
    paths,
    [...roots].map((hashPart) => paths.indexOf(hashPart)),
    new Uint8Array(paths.count),
  );
}

/**
 * What the closure of `root` adds to `closed` (rows closed under references: whatever one of them
 * reaches is in it), without changing it: the rows reached outside it. `seen` is scratch space
 * reused across calls, stamped with `stamp`, which must differ from every earlier call's.
 */
export function closureBeyond(paths: PathTable, root: number, closed: Uint8Array, seen: Uint32Array, stamp: number): number[] {
  const added: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const row = stack.pop()!;
    if (closed[row] === 1 || seen[row] === stamp || !paths.isPresent(row)) continue;
    seen[row] = stamp;
    added.push(row);
    for (const target of paths.references(row)) stack.push(target);
  }
  return added;
}
