// watch-exec --watch-mode auto: Nix honours a post-build-hook only from root or trusted users;
// for anyone else it would be ignored in silence and nothing pushed, so auto falls back to
// watching the store and says which it chose.
import { currentUser, detectTrust } from '../../nixconf/trust.js';

export type WatchMode = 'auto' | 'store' | 'post-build-hook';

export async function chooseWatchMode(
  requested: WatchMode | undefined,
  env: NodeJS.ProcessEnv,
): Promise<{ mode: 'store' | 'post-build-hook'; why: string }> {
  if (requested === 'store' || requested === 'post-build-hook') return { mode: requested, why: 'as asked' };
  const trust = await detectTrust(await currentUser(), env);
  return trust.trusted
    ? { mode: 'post-build-hook', why: `Nix will run our post-build-hook: ${trust.reason}` }
    : { mode: 'store', why: `Nix would ignore a post-build-hook: ${trust.reason}` };
}
