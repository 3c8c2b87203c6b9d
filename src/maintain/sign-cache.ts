// `cachix sign`: every narinfo of a cache, re-signed for a key rotation. Each is replaced whole
// (a rename in a directory, one PUT), so a reader sees the old or the new narinfo, never a part;
// a rerun after a kill skips what is done.
import type { BinaryCache } from '../caches/cache.js';
import { forEachConcurrently } from '../util/for-each-concurrently.js';
import { requireMaintenance } from './capabilities.js';
import { narInfoHashPart } from './inventory.js';
import { resignNarInfo, type ResignOutcome, type ResignPlan } from './resign.js';

const SIGN_CONCURRENCY = 16;

export type SignTotals = Record<ResignOutcome, number> & { total: number; untrustedPaths: string[] };

export async function signCache(cache: BinaryCache, plan: ResignPlan, storeDir: string, log: (line: string) => void): Promise<SignTotals> {
  const writable = requireMaintenance(cache);
  const names = (await writable.list('')).map((file) => file.name).filter((name) => narInfoHashPart(name) !== undefined);
  const totals: SignTotals = { signed: 0, dropped: 0, unchanged: 0, untrusted: 0, total: names.length, untrustedPaths: [] };
  let done = 0;
  await forEachConcurrently(names, SIGN_CONCURRENCY, async (name) => {
    const hashPart = narInfoHashPart(name)!;
    const text = await writable.getNarInfo(hashPart);
    if (text === undefined) return; // deleted meanwhile (gc): nothing to sign
    const result = resignNarInfo(text, plan, storeDir);
    if (result.text !== undefined) await writable.putFile(name, result.text, 'text/x-nix-narinfo');
    totals[result.outcome]++;
    if (result.outcome === 'untrusted') totals.untrustedPaths.push(hashPart);
    done++;
    if (done % 1000 === 0) log(`[${done}/${names.length}] narinfos`);
  });
  return totals;
}
