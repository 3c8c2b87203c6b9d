import { openCache } from '../caches/open.js';
import type { Context } from '../context.js';
import { problemCount, summarizeCache, type CacheSummary } from '../maintain/info.js';
import { printable } from '../util/printable.js';
import { shellWord } from '../util/shell-word.js';
import { formatBytes } from '../util/quantities.js';

export interface InfoOptions {
  json?: boolean;
}

function keepText(keep: CacheSummary['pins'][number]['keep']): string {
  if ('forever' in keep) return 'keep forever';
  if ('revisions' in keep) return `keep ${keep.revisions} revision(s)`;
  return `keep ${keep.days} day(s)`;
}

function humanReport(summary: CacheSummary): string {
  const lines = [
    `cache         ${summary.cache}`,
    `paths         ${summary.paths}`,
    `NAR bytes     ${summary.narBytes} (${formatBytes(summary.narBytes)} unpacked)`,
    `stored bytes  ${summary.storedBytes} (${formatBytes(summary.storedBytes)} in the cache)`,
    `compression   ${
      Object.entries(summary.compression)
        .map(([method, count]) => `${method} ${count}`)
        .join(', ') || '-'
    }`,
    `build logs    ${summary.extras.logs}`,
    `listings      ${summary.extras.listings}`,
    `debug info    ${summary.extras.debugInfo}`,
    `oldest push   ${summary.oldestPush ?? '-'}`,
    `newest push   ${summary.newestPush ?? '-'}`,
    `pins          ${summary.pins.length}`,
  ];
  for (const pin of summary.pins) {
    lines.push(`  ${pin.name} ${pin.storePath} (${pin.pinnedAt}, ${keepText(pin.keep)}${pin.inCache ? '' : ', NOT IN THE CACHE'})`);
  }
  const problems = problemCount(summary);
  lines.push(`consistency   ${problems === 0 ? 'ok' : `${problems} problem(s)`}`);
  const { missingNars, missingReferences, unnamedNars, unreadableNarInfos } = summary.problems;
  for (const entry of missingNars) lines.push(`  NAR missing: ${entry}`);
  for (const entry of missingReferences) lines.push(`  reference missing: ${entry}`);
  for (const entry of unreadableNarInfos) lines.push(`  unreadable narinfo: ${entry}`);
  for (const entry of unnamedNars) lines.push(`  NAR no narinfo names: ${entry}`);
  // Names and problems quote what the server listed: no terminal escapes reach the terminal.
  return lines.map(printable).join('\n') + '\n';
}

/** `cachix info CACHE [--json]`: counts, sizes, dates, pins and a consistency check, from a listing. */
export async function run(context: Context, cacheName: string, options: InfoOptions): Promise<number> {
  const opened = await openCache(cacheName, context);
  try {
    const summary = await summarizeCache(opened.cache, shellWord(cacheName), (line) => context.log(line));
    context.stdout.write(options.json ? JSON.stringify(summary, null, 2) + '\n' : humanReport(summary));
    return 0;
  } finally {
    await opened.cache.close?.();
  }
}
