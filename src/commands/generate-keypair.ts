import { registerCachixKey } from '../caches/cachix-keys.js';
import { authToken, cachixHost } from '../caches/open.js';
import { checkCacheName, loadConfig, saveConfig } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../nix/signing.js';
import { registerSecret } from '../redact.js';

export async function run(context: Context, name: string, options: { keyName?: string }): Promise<void> {
  checkCacheName(name);
  const config = await loadConfig(context.configPath);
  const existing = config.caches[name];
  if (existing?.signingKey) {
    throw new UserError(
      `${name} already has a signing key (public key ${existing.publicKey ?? 'unknown'})`,
      `a new key would make every path signed so far untrusted; to replace it anyway, delete signing_key under [caches.${name}] in ${context.configPath}`,
    );
  }
  // A name the config does not know is a cache on the cachix API host, as with cachix itself.
  if (!existing || existing.url.startsWith('cachix:')) return generateForCachix(context, name, options);
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
