// Which key signs a push, found as cachix finds it (Command/Push.hs getPushSecret):
// CACHIX_SIGNING_KEY first, then the cache's key in our config, then in cachix.dhall. A cachix
// API cache with no key at all is pushed with the token alone and the service signs (cSig null).
import type { CacheInfo } from '../caches/cache.js';
import type { OpenedCache } from '../caches/open.js';
import { UserError } from '../errors.js';
import { namedKey, parseSecretKeyText, publicKeyBase64, type SecretKeyText } from '../nix/secret-key-formats.js';
import { formatPublicKey, parsePublicKey, publicKeyOf, type SigningKey } from '../nix/signing.js';
import { shellWord } from '../util/shell-word.js';
import { registerSecret } from '../redact.js';

export interface FoundKeyText {
  text: string;
  /** Where it came from, for messages: never the key itself. */
  source: string;
}

const KEY_FORMATS_HINT =
  "a signing key is Nix's NAME:<88 base64 characters> (nix-store --generate-binary-cache-key) or cachix's bare <88 base64 characters> (cachix generate-keypair)";

/** The cachix API, as it declares itself: the one cache whose service signs when we hold no key. */
export function isCachixApiCache(opened: OpenedCache): boolean {
  return opened.cache.capabilities.signs === 'client-or-server';
}

/** Who signs a push when no key is found: the server itself, the cachix service for a push with the token, or nobody (push refuses). */
export function signerWithoutKey(opened: OpenedCache, hasToken: boolean): 'server' | 'service' | undefined {
  if (opened.cache.capabilities.signs === 'server') return 'server';
  if (isCachixApiCache(opened) && hasToken) return 'service';
  return undefined;
}

/** The one of `keys` (NAME:base64) whose public half is `publicHalf`. */
export function keyWithPublicHalf(keys: readonly string[], publicHalf: string): string | undefined {
  return keys.find((key) => key.slice(key.indexOf(':') + 1) === publicHalf);
}

/** The environment wins over the config, as in cachix; cachix.dhall comes last. */
export function findSigningKeyText(opened: OpenedCache, env: NodeJS.ProcessEnv): FoundKeyText | undefined {
  if (env.CACHIX_SIGNING_KEY?.trim()) return { text: env.CACHIX_SIGNING_KEY, source: 'CACHIX_SIGNING_KEY' };
  if (opened.entry?.signingKey) return { text: opened.entry.signingKey, source: `the config entry of ${opened.name}` };
  if (opened.cachixDhallKey) return { text: opened.cachixDhallKey.text, source: `${opened.cachixDhallKey.path} (cache ${opened.name})` };
  return undefined;
}

/** The key text parsed (and registered for redaction), or a UserError naming where it came from. */
export function parseFoundKey(found: FoundKeyText): SecretKeyText {
  registerSecret(found.text.trim());
  try {
    return parseSecretKeyText(found.text);
  } catch (error) {
    throw new UserError(`bad signing key in ${found.source}: ${(error as Error).message}`, KEY_FORMATS_HINT);
  }
}

/**
 * A bare key has no name. On a cachix API cache the name is that of the key the service
 * publishes with the same public half (the service writes that name before the signature); on
 * any other cache it is the name of the public key in the config entry.
 */
function nameForBareKey(parsed: SecretKeyText, found: FoundKeyText, opened: OpenedCache, info: CacheInfo | undefined): string {
  const publicHalf = publicKeyBase64(parsed);
  if (isCachixApiCache(opened) && info) {
    const published = keyWithPublicHalf(info.publicKeys, publicHalf);
    if (published) return published.slice(0, published.indexOf(':'));
    throw new UserError(
      `the signing key from ${found.source} is not a key cache ${opened.name} publishes (${info.publicKeys.join(', ') || 'none'})`,
      `cachix.org would refuse every path signed with it; use the cache's key, or register a new one with: cachix generate-keypair ${opened.name}`,
    );
  }
  const configured = opened.entry?.publicKey;
  if (configured) return parsePublicKey(configured).name;
  throw new UserError(
    `the signing key from ${found.source} is cachix's bare base64, which carries no key name, and ${opened.name} has no public key in the config to take it from`,
    `give the key as NAME:<base64> (the name Nix trusts it under), or add public_key under [caches.${opened.name}]`,
  );
}

/** The key to sign with, or undefined when the cachix service signs (token-only push). */
export function resolveSigningKey(
  opened: OpenedCache,
  env: NodeJS.ProcessEnv,
  info: CacheInfo | undefined,
  hasToken: boolean,
): SigningKey | undefined {
  const found = findSigningKeyText(opened, env);
  if (!found) {
    // The key may be in cachix.dhall, which could not be read: say where and why, not "no key".
    if (opened.cachixDhallProblem) throw opened.cachixDhallProblem;
    if (signerWithoutKey(opened, hasToken) === 'service') return undefined;
    if (isCachixApiCache(opened)) {
      throw new UserError(
        `neither an auth token nor a signing key for ${opened.name}`,
        'set CACHIX_AUTH_TOKEN (or run `cachix authtoken --stdin`); for a cache you sign yourself also CACHIX_SIGNING_KEY',
      );
    }
    throw new UserError(
      `no signing key for ${opened.name}`,
      opened.entry
        ? `set CACHIX_SIGNING_KEY to the cache's secret key, or run: cachix generate-keypair ${opened.name}`
        : // generate-keypair takes a configured name, not a URL: register the cache with its key instead.
          `set CACHIX_SIGNING_KEY to the cache's secret key, or register the cache with it: CACHIX_SIGNING_KEY=<its key> cachix create NAME --url ${shellWord(opened.url)}`,
    );
  }
  const parsed = parseFoundKey(found);
  const key = parsed.format === 'nix' ? parsed.key : namedKey(parsed, nameForBareKey(parsed, found, opened, info));
  const expected = opened.entry?.publicKey;
  if (expected && formatPublicKey(publicKeyOf(key)) !== formatPublicKey(parsePublicKey(expected))) {
    throw new UserError(
      `the signing key from ${found.source} does not belong to ${opened.name} (its public key is ${expected})`,
      'Nix would reject everything signed with it; use the key that `cachix create` made for this cache',
    );
  }
  return key;
}
