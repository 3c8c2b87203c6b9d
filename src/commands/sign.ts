import { openCache } from '../caches/open.js';
import { loadConfig, saveConfig } from '../config.js';
import { storeDirOf, type Context } from '../context.js';
import { UserError } from '../errors.js';
import { signCache } from '../maintain/sign-cache.js';
import { parseSigningKey, publicKeyOf } from '../nix/signing.js';
import { registerSecret } from '../redact.js';

export interface SignOptions {
  drop?: string;
}

/** `cachix sign CACHE [--drop KEYNAME]`: the current key's signature on every narinfo; a retired key's removed. */
export async function run(context: Context, cacheName: string, options: SignOptions): Promise<number> {
  const opened = await openCache(cacheName, context);
  try {
    const entry = opened.entry;
    if (!entry?.signingKey) {
      throw new UserError(
        `${cacheName} has no signing key in ${context.configPath}`,
        `sign works on caches you sign: cachix generate-keypair ${cacheName}`,
      );
    }
    for (const text of [entry.signingKey, ...(entry.retiredSigningKeys ?? [])]) registerSecret(text);
    const key = parseSigningKey(entry.signingKey);
    const retired = (entry.retiredSigningKeys ?? []).map(parseSigningKey);
    if (options.drop !== undefined && options.drop === key.name) {
      throw new UserError(
        `${options.drop} is the key ${cacheName} signs with now`,
        'drop a retired key; to move away from this one, first: cachix generate-keypair --rotate',
      );
    }
    const totals = await signCache(
      opened.cache,
      { key, trusted: [key, ...retired].map(publicKeyOf), drop: options.drop },
      storeDirOf(context.env),
      (line) => context.log(line),
    );
    for (const hashPart of totals.untrustedPaths)
      context.log(`not re-signed (no valid signature by a key of ${cacheName}): ${hashPart}.narinfo`);
    context.log(
      `${totals.total} narinfos: ${totals.signed} signed with ${key.name}, ${totals.dropped} had only ${options.drop ?? 'a dropped key'}'s signature removed, ${totals.unchanged} already done, ${totals.untrusted} not ours to sign`,
    );
    if (options.drop !== undefined && retired.some((old) => old.name === options.drop))
      await forgetRetiredKey(context, cacheName, options.drop);
    return totals.untrusted > 0 ? 1 : 0;
  } finally {
    await opened.cache.close?.();
  }
}

async function forgetRetiredKey(context: Context, cacheName: string, keyName: string): Promise<void> {
  const config = await loadConfig(context.configPath);
  const entry = config.caches[cacheName];
  if (!entry) return;
  entry.retiredSigningKeys = (entry.retiredSigningKeys ?? []).filter((text) => parseSigningKey(text).name !== keyName);
  await saveConfig(context.configPath, config);
  context.log(`${keyName} is no longer trusted by \`cachix use\` and \`verify\` for ${cacheName}`);
}
