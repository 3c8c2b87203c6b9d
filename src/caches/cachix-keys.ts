// `generate-keypair` for a cache on the cachix API: the public key is registered with the
// service (POST /cache/NAME/key, as cachix's Command/Config.hs does) before the secret is kept,
// so a key the service refused is never stored, and one it took is published to every `use`.
import { UserError } from '../errors.js';
import { formatBareSecretKey } from '../nix/secret-key-formats.js';
import { generateSigningKey, publicKeyOf, type SigningKey } from '../nix/signing.js';
import { CachixApiClient } from './cachix-api-client.js';

export interface RegisteredKey {
  key: SigningKey;
  /** cachix's format for the secret, as `cachix generate-keypair` prints it and CACHIX_SIGNING_KEY takes it. */
  secretKeyBare: string;
  publicKeyBase64: string;
}

export async function registerCachixKey(options: { name: string; host: string; token: string | undefined }): Promise<RegisteredKey> {
  if (!options.token) {
    throw new UserError(
      `registering a signing key for ${options.name} needs an auth token`,
      'run `cachix authtoken --stdin` or set CACHIX_AUTH_TOKEN (a token with write access to the cache)',
    );
  }
  // The service names the key; ours is only a placeholder until then.
  const key = generateSigningKey(`${options.name}.cachix.org`);
  const publicKeyBase64 = Buffer.from(publicKeyOf(key).key).toString('base64');
  const client = new CachixApiClient({ name: options.name, host: options.host, token: options.token });
  try {
    await client.createKey(publicKeyBase64);
  } finally {
    await client.close();
  }
  return { key, secretKeyBare: formatBareSecretKey(key), publicKeyBase64 };
}
