// Whether Nix on this machine will read a cache: substituter, key, trust and netrc, as Nix itself
// reports its settings, and whether the post-build-hook and the daemon are there.
import { access, constants, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import type { CacheForNix } from '../nixconf/cache-for-nix.js';
import { currentUser, detectTrust } from '../nixconf/trust.js';
import { systemAllowsCache } from '../nixconf/untrusted.js';
import { findNetrcCredentials, parseNetrc } from '../netrc.js';
import type { NixSettings } from './nix-settings.js';
import { finding, type CheckResult } from './report.js';

const withoutSlash = (url: string): string => url.replace(/\/+$/, '');

export async function checkNixUses(
  name: string,
  cache: CacheForNix,
  settings: NixSettings,
  env: NodeJS.ProcessEnv,
): Promise<CheckResult[]> {
  const url = withoutSlash(cache.substituterUrl);
  if (!settings.substituters.map(withoutSlash).includes(url)) {
    return [
      finding(
        name,
        'nix uses it',
        'warn',
        `${cache.substituterUrl} is not among Nix's substituters (fine for a cache this machine only pushes to)`,
        `cachix use ${name}`,
      ),
    ];
  }
  const trustedKeys = new Set(settings.trustedPublicKeys);
  if (!cache.publicKeys.some((key) => trustedKeys.has(key))) {
    return [
      finding(
        name,
        'nix uses it',
        'fail',
        `Nix substitutes from ${cache.substituterUrl} but trusts none of its keys (${cache.publicKeys.join(', ')}): every path will be refused`,
        `cachix use ${name}`,
      ),
    ];
  }
  const results = [finding(name, 'nix uses it', 'ok', `${cache.substituterUrl} is a substituter and its key is trusted`)];
  const verdict = await detectTrust(await currentUser(), env);
  if (!verdict.trusted) {
    const allowed = await systemAllowsCache(cache, env);
    results.push(
      allowed
        ? finding(name, 'trust', 'ok', `an untrusted user, but ${allowed}`)
        : finding(
            name,
            'trust',
            'warn',
            `${verdict.reason}, and the system nix.conf does not list ${cache.substituterUrl} in trusted-substituters: the Nix daemon ignores it for this user`,
            `an admin adds to /etc/nix/nix.conf: trusted-substituters = ${cache.substituterUrl}\n` +
              `and extra-trusted-public-keys = ${cache.publicKeys.join(' ')} (then restarts nix-daemon)`,
          ),
    );
  }
  return results;
}

/** A private cache is read through Nix's netrc; curl sends nothing for an entry without login. */
export async function checkNetrc(name: string, cache: CacheForNix, settings: NixSettings): Promise<CheckResult | undefined> {
  const substituter = new URL(cache.substituterUrl);
  // Nix reads netrc for HTTP only (S3 takes AWS credentials; a directory needs none).
  if (substituter.protocol !== 'http:' && substituter.protocol !== 'https:') return undefined;
  const host = substituter.host;
  const text = settings.netrcFile ? await readFile(settings.netrcFile, 'utf8').catch(() => undefined) : undefined;
  const entries = text === undefined ? [] : parseNetrc(text);
  const credentials = findNetrcCredentials(entries, host) ?? findNetrcCredentials(entries, substituter.hostname);
  if (!credentials) {
    if (cache.isPublic) return undefined;
    return finding(
      name,
      'netrc',
      'fail',
      `the cache is private and ${settings.netrcFile || 'netrc'} has no entry for ${host}: Nix will get 401`,
      `cachix use ${name}`,
    );
  }
  if (!credentials.login) {
    return finding(
      name,
      'netrc',
      'warn',
      `the ${settings.netrcFile} entry for ${host} has no login: curl sends an empty user name, which servers that check it refuse`,
      `give it one: machine ${host} login token password <token>`,
    );
  }
  return finding(name, 'netrc', 'ok', `${settings.netrcFile} has credentials for ${host}`);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(2000, () => done(false));
  });
}

export async function checkHookAndDaemon(settings: NixSettings, socketPath: string): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  if (!settings.postBuildHook) {
    results.push(
      finding(
        '-',
        'post-build-hook',
        'warn',
        'none: builds are pushed only when you run cachix push or watch-store',
        'to push as Nix builds, see `cachix daemon hook-script --help`',
      ),
    );
  } else {
    const runnable = await access(settings.postBuildHook, constants.X_OK).then(
      () => true,
      () => false,
    );
    results.push(
      runnable
        ? finding('-', 'post-build-hook', 'ok', `${settings.postBuildHook} is executable`)
        : finding(
            '-',
            'post-build-hook',
            'fail',
            `Nix's post-build-hook ${settings.postBuildHook} is missing or not executable: every build will fail its hook`,
            'install it again: cachix daemon hook-script, or remove post-build-hook from nix.conf',
          ),
    );
  }
  if (existsSync(socketPath)) {
    results.push(
      (await answers(socketPath))
        ? finding('-', 'daemon', 'ok', `a daemon answers on ${socketPath}`)
        : finding('-', 'daemon', 'fail', `${socketPath} exists but no daemon answers on it`, 'start it again: cachix daemon run CACHE'),
    );
  }
  return results;
}
