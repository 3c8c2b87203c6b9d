import type { Context } from '../context.js';
import { addCacheToNixConf } from '../nixconf/install.js';
import { choosePlacement, type Mode } from '../nixconf/mode.js';
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
  const placement = await choosePlacement(options, user, cacheName, context.env);
  const log = (line: string): boolean => process.stderr.write(line + '\n');
  if (placement.mode === 'nixos') {
    const written = await writeNixosModules(placement.nixosFolder!, cache.name, cache.substituterUrl, cache.publicKeys);
    log(`${written.changed ? 'Wrote' : 'Already up to date:'} ${written.module} and ${written.glue}.`);
    log(nixosInstructions(placement.nixosFolder!));
  } else {
    const outcome = await addCacheToNixConf(placement, cache, context.env);
    for (const note of outcome.notes) log(`note: ${note}`);
    if (outcome.changed) {
      log(
        `Configured ${cache.substituterUrl} in ${outcome.nixConfPath}${outcome.backupPath ? ` (previous version: ${outcome.backupPath})` : ''}.`,
      );
    } else {
      log(`${outcome.nixConfPath} already uses ${cache.substituterUrl}; nothing changed.`);
    }
    if (outcome.netrcPath) log(`Read access for the private cache is in ${outcome.netrcPath}.`);
    if (outcome.changed && placement.mode === 'root-nixconf') log('If a nix-daemon is running, restart it so it reads the new settings.');
  }
  await savePin(context, cache);
}
