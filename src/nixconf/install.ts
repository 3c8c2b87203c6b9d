import { readFile } from 'node:fs/promises';
import { addListValues, removeListValues, setIfAbsent } from './edit.js';
import type { Placement } from './placement.js';
import { netrcPassword, removeNetrcMachine, setNetrcPassword } from './netrc-edit.js';
import { effectiveValues, loadNixConf, parseNixConfText, readNixConfText } from './parse.js';
import type { CacheForNix } from './cache-for-nix.js';
import { systemNixConfPath } from './trust.js';
import { UserError } from '../errors.js';
import { editTarget, ManagedByNixError, replaceFile } from './write.js';

// Puts a cache into a nix.conf (and its credentials into the netrc Nix reads) and takes it out
// again. Every new text is computed and checked before the first write, so an error leaves every
// file as it was; unchanged files are not rewritten at all.

export interface NixConfOutcome {
  nixConfPath: string;
  changed: boolean;
  backupPath?: string | undefined;
  netrcPath?: string | undefined;
  /** Something the user should know (a value we must leave, a missing token). */
  notes: string[];
}

/** The host a private cache's netrc entry is for; netrc only matters for http(s) caches. */
function netrcHost(cache: CacheForNix): string | undefined {
  const url = new URL(cache.substituterUrl);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.hostname : undefined;
}

/** The netrc-file Nix will read: the last one set in the system and target nix.conf, if any. */
async function configuredNetrcFile(placement: Placement, targetText: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const path = placement.nixConfPath!;
  const system = placement.mode === 'user-nixconf' ? await loadNixConf(systemNixConfPath(env)) : [];
  const own = parseNixConfText(targetText, path)
    .lines.filter((line) => line.kind === 'setting')
    .map((line) => ({ ...line, file: path }));
  return effectiveValues([...system, ...own], 'netrc-file')
    .map((entry) => entry.value)
    .pop();
}

async function readTextOrEmpty(path: string): Promise<string> {
  return (await readNixConfText(path)) ?? '';
}

/** Refuses a nix.conf Nix generated before anything is written, saying what to add where instead. */
async function checkEditable(path: string, cache: CacheForNix): Promise<void> {
  try {
    await editTarget(path);
  } catch (error) {
    if (!(error instanceof ManagedByNixError)) throw error;
    throw new UserError(
      error.message,
      'add these to the Nix configuration that generates it (home-manager or NixOS: nix.settings), or use `-m nixos` on NixOS:\n' +
        `  extra-substituters = ${cache.substituterUrl}\n  extra-trusted-public-keys = ${cache.publicKeys.join(' ')}`,
    );
  }
}

export async function addCacheToNixConf(placement: Placement, cache: CacheForNix, env: NodeJS.ProcessEnv): Promise<NixConfOutcome> {
  const path = placement.nixConfPath!;
  await checkEditable(path, cache);
  const original = await readTextOrEmpty(path);
  let text = addListValues(original, path, 'substituters', [cache.substituterUrl]);
  text = addListValues(text, path, 'trusted-public-keys', cache.publicKeys);
  const notes: string[] = [];
  let netrc: { path: string; original: string; text: string } | undefined;
  const host = netrcHost(cache);
  if (!cache.isPublic && host) {
    if (!cache.token) {
      notes.push(`${cache.name} is private and no auth token is known: run \`cachix authtoken --stdin\`, then this again`);
    } else {
      const configured = await configuredNetrcFile(placement, text, env);
      const netrcPath = configured ?? placement.netrcPath;
      const netrcOriginal = await readTextOrEmpty(netrcPath);
      netrc = { path: netrcPath, original: netrcOriginal, text: setNetrcPassword(netrcOriginal, host, cache.token) };
      if (!configured && placement.setNetrcFile) text = setIfAbsent(text, path, 'netrc-file', netrcPath);
    }
  }
  // The first write: replaceFile refuses a generated netrc before writing anything.
  if (netrc && netrc.text !== netrc.original) await replaceFile(netrc.path, netrc.text, { secret: true });
  if (text === original) return { nixConfPath: path, changed: false, netrcPath: netrc?.path, notes };
  const { backupPath } = await replaceFile(path, text, { mode: 0o644 });
  return { nixConfPath: path, changed: true, backupPath, netrcPath: netrc?.path, notes };
}

export async function removeCacheFromNixConf(placement: Placement, cache: CacheForNix, env: NodeJS.ProcessEnv): Promise<NixConfOutcome> {
  const path = placement.nixConfPath!;
  await editTarget(path);
  const original = await readNixConfText(path);
  if (original === undefined) return { nixConfPath: path, changed: false, notes: [`${path} does not exist`] };
  const substituters = removeListValues(original, path, 'substituters', [cache.substituterUrl]);
  const keys = removeListValues(substituters.text, path, 'trusted-public-keys', cache.publicKeys);
  const notes = [...substituters.leftInPlainLines, ...keys.leftInPlainLines].map(
    ({ value, line }) => `${value} stays on line ${line} of ${path}: cachix use did not add it there, so it is left alone`,
  );
  let netrc: { path: string; original: string; text: string } | undefined;
  const host = netrcHost(cache);
  if (host && cache.token) {
    const netrcPath = (await configuredNetrcFile(placement, original, env)) ?? placement.netrcPath;
    const netrcOriginal = await readFile(netrcPath, 'utf8').catch(() => undefined);
    // Only the entry `use` wrote (our token for this host); a login the user keeps there stays.
    if (netrcOriginal !== undefined && netrcPassword(netrcOriginal, host) === cache.token) {
      netrc = { path: netrcPath, original: netrcOriginal, text: removeNetrcMachine(netrcOriginal, host) };
    }
  }
  if (netrc && netrc.text !== netrc.original) await replaceFile(netrc.path, netrc.text, { secret: true });
  if (keys.text === original) return { nixConfPath: path, changed: false, notes };
  const { backupPath } = await replaceFile(path, keys.text);
  return { nixConfPath: path, changed: true, backupPath, netrcPath: netrc?.path, notes };
}
