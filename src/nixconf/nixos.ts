import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFile } from './write.js';

// On NixOS, /etc/nix/nix.conf is generated and read-only: caches belong in the system
// configuration. Like cachix, we write one module per cache into `<folder>/cachix/NAME.nix` and a
// glue module `<folder>/cachix.nix` importing every module in that folder, so the user adds one
// import once. List options merge across modules, so these add to the user's own substituters.

/** A Nix string literal: escapes what Nix would otherwise read as syntax. */
export function nixString(text: string): string {
  return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$\{/g, '\\${') + '"';
}

export function cacheModuleText(substituterUrl: string, publicKeys: readonly string[]): string {
  return `# Written by \`cachix use\`; \`cachix remove\` deletes it.
{
  nix.settings = {
    substituters = [
      ${nixString(substituterUrl)}
    ];
    trusted-public-keys = [
${publicKeys.map((key) => `      ${nixString(key)}`).join('\n')}
    ];
  };
}
`;
}

// Builtins only (no lib), so the module also evaluates outside a NixOS system, e.g. in tests.
// cache.nixos.org is listed too: the first substituter defined wins priority ties, and a
// definition here must not push the default cache behind the ones we add.
export const GLUE_MODULE_TEXT = `# Written by \`cachix use\`: imports every cache module in ./cachix; it is rewritten each time.
{ ... }:

let
  folder = ./cachix;
  entries = builtins.readDir folder;
  isModule = name: entries.\${name} == "regular" && builtins.match ".*\\\\.nix" name != null;
in
{
  imports = map (name: folder + ("/" + name)) (builtins.filter isModule (builtins.attrNames entries));
  nix.settings.substituters = [ "https://cache.nixos.org/" ];
}
`;

export function nixosModulePaths(folder: string, name: string): { glue: string; module: string } {
  return { glue: join(folder, 'cachix.nix'), module: join(folder, 'cachix', `${name}.nix`) };
}

async function writeIfDifferent(path: string, text: string): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === text) return false;
  await replaceFile(path, text, { mode: 0o644, backup: false });
  return true;
}

export async function writeNixosModules(
  folder: string,
  name: string,
  substituterUrl: string,
  publicKeys: readonly string[],
): Promise<{ glue: string; module: string; changed: boolean }> {
  const paths = nixosModulePaths(folder, name);
  const moduleChanged = await writeIfDifferent(paths.module, cacheModuleText(substituterUrl, publicKeys));
  const glueChanged = await writeIfDifferent(paths.glue, GLUE_MODULE_TEXT);
  return { ...paths, changed: moduleChanged || glueChanged };
}

/** Deletes the cache's module; the glue module stays (it imports whatever is left). */
export async function removeNixosModule(folder: string, name: string): Promise<{ module: string; removed: boolean }> {
  const { module } = nixosModulePaths(folder, name);
  const existed = await readFile(module).then(
    () => true,
    () => false,
  );
  if (existed) await rm(module);
  return { module, removed: existed };
}

export function nixosInstructions(folder: string): string {
  return [
    `To use it, add the glue module to the imports in ${join(folder, 'configuration.nix')}:`,
    '',
    '    imports = [ ./cachix.nix ];',
    '',
    'then run:',
    '',
    '    sudo nixos-rebuild switch',
  ].join('\n');
}
