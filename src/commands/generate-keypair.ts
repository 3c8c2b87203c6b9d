import { checkCacheName, loadConfig, saveConfig } from '../config.js';
import type { Context } from '../context.js';
import { UserError } from '../errors.js';
import { formatPublicKey, formatSigningKey, generateSigningKey, publicKeyOf } from '../nix/signing.js';

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
  let key;
  try {
    key = generateSigningKey(options.keyName ?? `${name}-1`);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
  const publicKey = formatPublicKey(publicKeyOf(key));
  // A name the config does not know is a cache on the cachix API host, as with cachix itself.
  config.caches[name] = { ...(existing ?? { url: `cachix:${name}` }), signingKey: formatSigningKey(key), publicKey };
  await saveConfig(context.configPath, config);
  context.stderr.write(
    `stored the secret key for ${name} (0600) in ${context.configPath}; keep a backup: it cannot be recovered\npublic key:\n`,
  );
  context.stdout.write(`${publicKey}\n`);
}
