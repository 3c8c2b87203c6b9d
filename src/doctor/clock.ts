import type { CheckResult } from './report.js';
import { finding } from './report.js';

/** S3 refuses signatures 15 minutes off; TLS and tokens with expiry break sooner in practice. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
const DATE_TIMEOUT_MS = 10_000;

/** Where a cache's server answers plain HTTP, to read its Date header; undefined for a local cache. */
export function serverBaseUrl(cacheUrl: string, cachixHost: string): string | undefined {
  const url = new URL(cacheUrl);
  switch (url.protocol) {
    case 'http:':
    case 'https:':
      return `${url.origin}/`;
    case 'attic+http:':
    case 'attic+https:':
      return `${url.protocol.slice('attic+'.length)}//${url.host}/`;
    case 'cachix:':
      return `${cachixHost}/`;
    case 's3:': {
      const endpoint = url.searchParams.get('endpoint');
      const scheme = url.searchParams.get('scheme') ?? 'https';
      if (endpoint) return `${/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `${scheme}://${endpoint}`}`.replace(/\/*$/, '/');
      return `https://s3.${url.searchParams.get('region') ?? 'us-east-1'}.amazonaws.com/`;
    }
    default:
      return undefined;
  }
}

/** The server's clock against ours, from the Date header of any answer (a 403 has one too). */
export async function checkClock(cache: string, baseUrl: string, now: () => number = Date.now): Promise<CheckResult | undefined> {
  let date: string | null;
  try {
    const response = await fetch(baseUrl, { method: 'HEAD', signal: AbortSignal.timeout(DATE_TIMEOUT_MS), redirect: 'manual' });
    date = response.headers.get('date');
  } catch {
    // Unreachable: the server check has said so already.
    return undefined;
  }
  const serverTime = date ? Date.parse(date) : NaN;
  if (Number.isNaN(serverTime)) return finding(cache, 'clock', 'ok', `${baseUrl} sends no Date to compare with`);
  const skewMs = now() - serverTime;
  const minutes = Math.round(Math.abs(skewMs) / 60_000);
  if (Math.abs(skewMs) > MAX_CLOCK_SKEW_MS) {
    return finding(
      cache,
      'clock',
      'fail',
      `this machine's clock is ${minutes} minutes ${skewMs > 0 ? 'ahead of' : 'behind'} ${baseUrl} (${date}): signed requests will be refused`,
      'set the clock right, e.g. `timedatectl set-ntp true` (or ntpdate/chrony)',
    );
  }
  return finding(cache, 'clock', 'ok', `within ${Math.max(1, Math.ceil(Math.abs(skewMs) / 1000))} s of the server's`);
}
