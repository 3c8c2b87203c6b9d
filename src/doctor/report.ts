import { printable } from '../util/printable.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One finding of `cachix doctor`: what was checked for which cache, and the fix when not ok. */
export interface CheckResult {
  /** The configured cache name, or '-' for what concerns the machine (config, hook, daemon). */
  cache: string;
  check: string;
  status: CheckStatus;
  message: string;
  hint?: string | undefined;
}

export function finding(cache: string, check: string, status: CheckStatus, message: string, hint?: string): CheckResult {
  return hint === undefined ? { cache, check, status, message } : { cache, check, status, message, hint };
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

/** One line a finding, `STATUS  cache  check: message`, the fix indented below anything not ok. */
export function formatFindings(results: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    lines.push(printable(`${LABEL[result.status]}  ${result.cache}  ${result.check}: ${result.message}`));
    if (result.status !== 'ok' && result.hint) {
      for (const line of result.hint.split('\n')) lines.push(printable(`        fix: ${line}`));
    }
  }
  const failed = results.filter((result) => result.status === 'fail').length;
  const warned = results.filter((result) => result.status === 'warn').length;
  lines.push(`${results.length} checks: ${results.length - failed - warned} ok, ${warned} warn, ${failed} fail`);
  return lines.join('\n') + '\n';
}
