// `cachix doctor`: the whole chain from this machine to each cache and back into Nix, each link
// checked the way it breaks in practice, with the fix for whatever is not ok.
import { cacheForNix } from '../caches/for-nix.js';
import { loadCachixDhall } from '../cachix-dhall.js';
import { loadConfig, type Config } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { defaultSocketPath } from '../push/daemon/socket.js';
import { checkCacheServer } from './cache-checks.js';
import { checkHookAndDaemon, checkNetrc, checkNixUses } from './nix-checks.js';
import { readNixSettings, type NixSettings } from './nix-settings.js';
import { finding, type CheckResult } from './report.js';

export interface DoctorOptions {
  /** One configured cache (or URL); every configured cache when not given. */
  cache?: string | undefined;
  storePath?: string | undefined;
  readOnly: boolean;
}

async function configChecks(context: Context): Promise<{ results: CheckResult[]; config?: Config }> {
  const results: CheckResult[] = [];
  let config: Config | undefined;
  try {
    config = await loadConfig(context.configPath);
    const count = Object.keys(config.caches).length;
    results.push(finding('-', 'config', 'ok', `${context.configPath} reads (${count} cache${count === 1 ? '' : 's'})`));
  } catch (error) {
    results.push(finding('-', 'config', 'fail', (error as Error).message, error instanceof UserError ? error.hint : undefined));
  }
  try {
    const dhall = await loadCachixDhall(context.cachixDhallPath);
    if (dhall) results.push(finding('-', 'cachix.dhall', 'ok', `${context.cachixDhallPath} reads`));
  } catch (error) {
    results.push(
      finding(
        '-',
        'cachix.dhall',
        'warn',
        (error as Error).message,
        'fix or remove it; our config.toml is read first and does not need it',
      ),
    );
  }
  return config ? { results, config } : { results };
}

async function nixSideChecks(name: string, context: Context, settings: NixSettings): Promise<CheckResult[]> {
  let cache;
  try {
    cache = await cacheForNix(name, context);
  } catch (error) {
    return [
      finding(
        name,
        'nix uses it',
        'warn',
        `cannot tell what Nix needs for it: ${(error as Error).message}`,
        error instanceof UserError ? error.hint : undefined,
      ),
    ];
  }
  const results = await checkNixUses(name, cache, settings, context.env);
  const netrc = await checkNetrc(name, cache, settings);
  if (netrc) results.push(netrc);
  return results;
}

export async function runDoctor(context: Context, options: DoctorOptions, report: (result: CheckResult) => void): Promise<CheckResult[]> {
  const all: CheckResult[] = [];
  const emit = (results: CheckResult[]): void => {
    for (const result of results) {
      all.push(result);
      report(result);
    }
  };
  const { results, config } = await configChecks(context);
  emit(results);
  let settings: NixSettings | undefined;
  try {
    settings = await readNixSettings(context.env);
  } catch (error) {
    emit([finding('-', 'nix', 'fail', (error as Error).message, error instanceof UserError ? error.hint : undefined)]);
  }
  const names = options.cache !== undefined ? [options.cache] : Object.keys(config?.caches ?? {});
  if (names.length === 0)
    emit([
      finding('-', 'caches', 'warn', 'no caches are configured', 'cachix create NAME, or check one by URL: cachix doctor --cache URL'),
    ]);
  for (const name of names) {
    const server = await checkCacheServer(name, context, { readOnly: options.readOnly, storePath: options.storePath });
    emit(server.results);
    if (server.info && settings) emit(await nixSideChecks(name, context, settings));
  }
  if (settings) emit(await checkHookAndDaemon(settings, defaultSocketPath(context.env)));
  return all;
}
