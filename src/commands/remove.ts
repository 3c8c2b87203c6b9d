import type { Context } from '../context.js';
import { removeCacheFromNixConf } from '../nixconf/install.js';
import { choosePlacement, type Mode } from '../nixconf/placement.js';
import { nixosInstructions, removeNixosModule } from '../nixconf/nixos.js';
import { cacheForNix } from '../caches/for-nix.js';
import { currentUser } from '../nixconf/trust.js';

export interface RemoveOptions {
  mode?: Mode;
  nixosFolder?: string;
  outputDirectory?: string;
  /** Needs `--public-key` on the remove command in cli.ts: for a cache given by URL, with no key in the config. */
  publicKey?: string;
}

/** `cachix remove NAME`: undo `cachix use NAME`, in the same place it wrote. */
export async function run(context: Context, cacheName: string, options: RemoveOptions): Promise<void> {
  const cache = await cacheForNix(cacheName, context, { offline: true, publicKey: options.publicKey });
  const user = await currentUser();
  const placement = await choosePlacement(options, user, cacheName, context.env, cache, 'remove');
  if (placement.mode === 'nixos') {
    const { module, removed } = await removeNixosModule(placement.nixosFolder!, cache.name);
    context.log(removed ? `Removed ${module}.` : `${module} does not exist; nothing to remove.`);
    if (removed) context.log(nixosInstructions(placement.nixosFolder!).split('\n').slice(-1)[0]!.trim() + ' applies it.');
    return;
  }
  const outcome = await removeCacheFromNixConf(placement, cache, context.env);
  if (cache.publicKeys.length === 0) context.log(`note: no key is known for ${cache.name}, so trusted-public-keys was left as it is`);
  for (const note of outcome.notes) context.log(`note: ${note}`);
  context.log(
    outcome.changed
      ? `Removed ${cache.substituterUrl} from ${outcome.nixConfPath}.`
      : `${outcome.nixConfPath} has no ${cache.substituterUrl} added by cachix use; nothing changed.`,
  );
  if (outcome.changed && placement.mode === 'root-nixconf')
    context.log('If a nix-daemon is running, restart it so it reads the new settings.');
}
