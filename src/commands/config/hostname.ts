import { loadCachixDhall } from '../../cachix-dhall.js';
import { loadConfig, saveConfig } from '../../config.js';
import { DEFAULT_CACHIX_HOST, type Context } from '../../context.js';
import { UserError } from '../../errors.js';

/** `cachix config get hostname`: the cachix API host in the config (then cachix.dhall's, then the default). */
export async function get(context: Context): Promise<void> {
  const config = await loadConfig(context.configPath);
  const host = config.host ?? (await loadCachixDhall(context.cachixDhallPath))?.hostname ?? DEFAULT_CACHIX_HOST;
  context.stdout.write(`${host}\n`);
}

/** `cachix config set hostname URL`. */
export async function set(context: Context, _key: string, value: string): Promise<void> {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`'${value}' is not a URL`, 'give the API host as a URL, e.g. https://cachix.org');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UserError(`'${value}' is not an http(s) URL`, 'give the API host as a URL, e.g. https://cachix.org');
  }
  const config = await loadConfig(context.configPath);
  config.host = value.replace(/\/+$/, '');
  await saveConfig(context.configPath, config);
  context.stdout.write(`stored hostname ${config.host} in ${context.configPath}\n`);
}
