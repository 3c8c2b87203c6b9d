import { defaultConfigPath } from './config.js';

/** What every command gets from the global flags and the environment. */
export interface Context {
  configPath: string;
  verbose: boolean;
  /** The cachix API host (for cachix caches): --host, then config, then https://cachix.org. */
  host: string | undefined;
  env: NodeJS.ProcessEnv;
}

export function makeContext(options: { config?: string; verbose?: boolean; host?: string }, env = process.env): Context {
  return {
    configPath: options.config ?? env.CACHIX_CONFIG ?? defaultConfigPath(env),
    verbose: options.verbose === true,
    host: options.host ?? env.CACHIX_HOST,
    env,
  };
}

export const DEFAULT_CACHIX_HOST = 'https://cachix.org';
