import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachix, cachixInProcess, type CliResult } from './cli.js';

/** A private HOME/XDG world for one test: its own config and local caches, removed afterwards. */
export interface CachixEnv {
  home: string;
  env: NodeJS.ProcessEnv;
  configPath: string;
  run(args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** The same, in this process (see cachixInProcess: for commands that start no Nix). */
  runInProcess(args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /**
   * `cachix create NAME [--url URL] [FLAGS]` as a test's setup. In this process (create starts no
   * Nix), except for s3://: the AWS SDK reads its credentials from the process environment.
   */
  create(name: string, url?: string, options?: { env?: NodeJS.ProcessEnv; flags?: string[] }): Promise<CliResult>;
  cleanup(): Promise<void>;
}

export async function makeCachixEnv(): Promise<CachixEnv> {
  const home = await mkdtemp(join(tmpdir(), 'cachix-home-'));
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_DATA_HOME: join(home, 'data'),
    CACHIX_AUTH_TOKEN: '',
    CACHIX_SIGNING_KEY: '',
  };
  const run: CachixEnv['run'] = (args, options = {}) => cachix(args, { input: options.input, env: { ...env, ...options.env } });
  const runInProcess: CachixEnv['runInProcess'] = (args, options = {}) =>
    cachixInProcess(args, { input: options.input, env: { ...env, ...options.env } });
  return {
    home,
    env,
    configPath: join(home, 'config', 'cachix', 'config.toml'),
    run,
    runInProcess,
    create: (name, url, options = {}) => {
      const args = ['create', name, ...(url === undefined ? [] : ['--url', url]), ...(options.flags ?? [])];
      return (url?.startsWith('s3://') ? run : runInProcess)(args, { env: options.env });
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}

/** Fails with the CLI's own words when a command that should work did not. */
export function expectOk(result: CliResult, what: string): CliResult {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** A CachixEnv with a local cache made by `cachix create NAME`, and a scratch folder beside it. */
export interface LocalCache {
  world: CachixEnv;
  /** A scratch folder for the test's own files (expressions, sockets), removed by cleanup. */
  work: string;
  /** Where the cache's files are. */
  cacheDir: string;
  /** What `cachix create` printed (the public key on stdout). */
  created: CliResult;
  cleanup(): Promise<void>;
}

export async function makeLocalCache(name: string): Promise<LocalCache> {
  const world = await makeCachixEnv();
  const work = await mkdtemp(join(tmpdir(), `cachix-${name}-work-`));
  const created = expectOk(await world.create(name), `cachix create ${name}`);
  return {
    world,
    work,
    cacheDir: join(world.env.XDG_DATA_HOME!, 'cachix', 'caches', name),
    created,
    cleanup: async () => {
      await world.cleanup();
      await rm(work, { recursive: true, force: true });
    },
  };
}
