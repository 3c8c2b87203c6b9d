import type { Context } from '../context.js';
import { addCacheToNixConf } from '../nixconf/install.js';
import { choosePlacement, type Mode } from '../nixconf/placement.js';
import { nixosInstructions, writeNixosModules } from '../nixconf/nixos.js';
import { cacheForNix, savePin } from '../caches/for-nix.js';
import { currentUser } from '../nixconf/trust.js';

export interface UseOptions {
  mode?: Mode;
  nixosFolder?: string;
  outputDirectory?: string;
  publicKey?: string;
}

/** `cachix use NAME`: make Nix substitute from the cache and trust its key. */
export async function run(context: Context, cacheName: string, options: UseOptions): Promise<void> {
  const cache = await cacheForNix(cacheName, context, { publicKey: options.publicKey });
  const user = await currentUser();
  const placement = await choosePlacement(options, user, cacheName, context.env, cache);
  if (placement.note) context.log(`note: ${placement.note}`);
  if (placement.mode === 'nixos') {
    const written = await writeNixosModules(placement.nixosFolder!, cache.name, cache.substituterUrl, cache.publicKeys);
    context.log(`${written.changed ? 'Wrote' : 'Already up to date:'} ${written.module} and ${written.glue}.`);
    context.log(nixosInstructions(placement.nixosFolder!));
  } else {
    const outcome = await addCacheToNixConf(placement, cache, context.env);
    for (const note of outcome.notes) context.log(`note: ${note}`);
    if (outcome.changed) {
      context.log(
        `Configured ${cache.substituterUrl} in ${outcome.nixConfPath}${outcome.backupPath ? ` (previous version: ${outcome.backupPath})` : ''}.`,
      );
    } else {
      context.log(`${outcome.nixConfPath} already uses ${cache.substituterUrl}; nothing changed.`);
    }
    if (outcome.netrcPath) context.log(`Read access for the private cache is in ${outcome.netrcPath}.`);
    if (outcome.changed && placement.mode === 'root-nixconf')
      context.log('If a nix-daemon is running, restart it so it reads the new settings.');
  }
  await savePin(context, cache);
}
