import { registerCachixKey } from '../caches/cachix-keys.js';
import { authToken, cachixHost, isCachixApiUrl } from '../caches/open.js';
import { checkCacheName, loadConfig, saveConfig, type Config } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { nextKeyName } from '../nix/key-rotation.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, parseSigningKey, publicKeyOf } from '../nix/signing.js';
import { registerSecret } from '../redact.js';

export async function run(context: Context, name: string, options: { keyName?: string; rotate?: boolean }): Promise<void> {
  checkCacheName(name);
  const config = await loadConfig(context.configPath);
  const existing = config.caches[name];
  if (options.rotate) return rotate(context, name, config, options.keyName);
  if (existing?.signingKey) {
    throw new UserError(
      `${name} already has a signing key (public key ${existing.publicKey ?? 'unknown'})`,
      `a new key would make every path signed so far untrusted; to move to a new key without cutting clients off: cachix generate-keypair ${name} --rotate`,
    );
  }
  // A name the config does not know is a cache on the cachix API host, as with cachix itself.
  if (!existing || isCachixApiUrl(existing.url)) return generateForCachix(context, name, options);
  let key;
  try {
    key = generateSigningKey(options.keyName ?? `${name}-1`);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
  const publicKey = formatPublicKey(publicKeyOf(key));
  config.caches[name] = { ...existing, signingKey: formatSigningKey(key), publicKey };
  await saveConfig(context.configPath, config);
  context.stderr.write(
    `stored the secret key for ${name} (0600) in ${context.configPath}; keep a backup: it cannot be recovered\npublic key:\n`,
  );
  context.stdout.write(`${publicKey}\n`);
}

/** As cachix: the service registers the public key and names it; the secret is printed once, in cachix's format. */
async function generateForCachix(context: Context, name: string, options: { keyName?: string }): Promise<void> {
  if (options.keyName) {
    throw new UserError('--key-name applies to caches you serve yourself', `the cachix service names the keys of ${name}; leave it out`);
  }
  const config = await loadConfig(context.configPath);
  const host = cachixHost(context, config);
  const registered = await registerCachixKey({ name, host, token: authToken(context, config) });
  registerSecret(registered.secretKeyBare);
  config.caches[name] = { ...(config.caches[name] ?? { url: `cachix:${name}` }), signingKey: registered.secretKeyBare };
  await saveConfig(context.configPath, config);
  context.stderr.write(
    [
      `registered the public key ${registered.publicKeyBase64} with cache ${name} on ${host}, and stored the secret key in ${context.configPath} (0600).`,
      'The secret key, printed this once on stdout: to push from another machine or CI, set it there as',
      '  export CACHIX_SIGNING_KEY=<that key>',
      'Keep a backup of it: it cannot be recovered, and paths signed with it are trusted only under it.',
      '',
    ].join('\n'),
  );
  context.stdout.write(`${registered.secretKeyBare}\n`);
}

/**
 * A rotation: a new key beside the current one, which stays in the config as retired (trusted by
 * `use` and `verify`) until `sign --drop` retires it. Pushes sign with the new key from now on.
 */
async function rotate(context: Context, name: string, config: Config, keyName: string | undefined): Promise<void> {
  const existing = config.caches[name];
  if (!existing?.signingKey || isCachixApiUrl(existing.url)) {
    throw new UserError(
      `${name} has no signing key of ours in ${context.configPath} to rotate`,
      existing !== undefined && isCachixApiUrl(existing.url)
        ? 'keys of a cachix API cache are managed by the service: generate one there'
        : `make its first key with: cachix generate-keypair ${name}`,
    );
  }
  const current = parseSigningKey(existing.signingKey);
  registerSecret(existing.signingKey);
  const retired = existing.retiredSigningKeys ?? [];
  const taken = new Set([current.name, ...retired.map((text) => parseSigningKey(text).name)]);
  let newName = keyName ?? nextKeyName(current.name);
  while (!keyName && taken.has(newName)) newName = nextKeyName(newName);
  if (taken.has(newName)) throw new UserError(`the key name ${newName} is already one of ${name}'s keys`, 'choose another with --key-name');
  let key;
  try {
    key = generateSigningKey(newName);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
  const publicKey = formatPublicKey(publicKeyOf(key));
  config.caches[name] = {
    ...existing,
    signingKey: formatSigningKey(key),
    publicKey,
    retiredSigningKeys: [...retired, existing.signingKey],
  };
  await saveConfig(context.configPath, config);
  const oldPublic = formatPublicKey(publicKeyOf(current));
  context.stderr.write(
    [
      `${name} now signs with ${newName}; ${current.name} is retired but still trusted by \`cachix use\` and \`verify\` (both in ${context.configPath}, 0600).`,
      'Next:',
      `  1. cachix sign ${name}                  # adds ${newName}'s signature to every narinfo in the cache`,
      `  2. clients: cachix use ${name}          # trusts both keys; or add ${publicKey} to trusted-public-keys`,
      `  3. once every client trusts ${newName}: cachix sign ${name} --drop ${current.name}`,
      `     (Nix keeps a narinfo it fetched for narinfo-cache-positive-ttl, 30 days by default)`,
      `old public key: ${oldPublic}`,
      'new public key:',
      '',
    ].join('\n'),
  );
  context.stdout.write(`${publicKey}\n`);
}
