import { loadCachixDhall } from '../../cachix-dhall.js';
import { importCachixDhall } from '../../cachix-dhall-import.js';
import { loadConfig, saveConfig } from '../../config.js';
import type { Context } from '../../context.js';
import { UserError } from '../../errors.js';

/** `cachix config import [FILE]`: cachix.dhall's token, hostname and keys into config.toml (0600). */
export async function run(context: Context, file: string | undefined): Promise<void> {
  const path = file ?? context.cachixDhallPath;
  const dhall = await loadCachixDhall(path);
  if (!dhall) throw new UserError(`there is no ${path} to import`, 'give the file: cachix config import PATH/TO/cachix.dhall');
  const imported = importCachixDhall(await loadConfig(context.configPath), dhall);
  if (imported.taken.length > 0) await saveConfig(context.configPath, imported.config);
  const log = (line: string): void => context.log(line);
  for (const kept of imported.kept) log(`kept what ${context.configPath} has: ${kept}`);
  if (imported.taken.length === 0) log(`nothing to import from ${path}`);
  else log(`imported ${imported.taken.join(', ')} from ${path} into ${context.configPath} (0600); ${path} is left as it was`);
}
