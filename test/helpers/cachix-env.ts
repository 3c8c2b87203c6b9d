import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachix, cachixRun, type CliResult } from './cli.js';

/** A private HOME/XDG world for one test: its own config and local caches, removed afterwards. */
export interface CachixEnv {
  home: string;
  env: NodeJS.ProcessEnv;
  configPath: string;
  /**
   * A command line as a test's step, in this world: in this process when it can, else as the built
   * binary (see cachixRun). Its exit code, stdout and stderr are the CLI's either way.
   */
  run(args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** The same, always as the built binary in a process of its own: for what only a process shows. */
  spawn(args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
  /** `cachix create NAME [--url URL] [FLAGS]` as a test's setup. */
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
  const run: CachixEnv['run'] = (args, options = {}) => cachixRun(args, { input: options.input, env: { ...env, ...options.env } });
  const spawn: CachixEnv['spawn'] = (args, options = {}) =>
    cachix(args, { input: options.input, env: { ...env, ...options.env }, timeoutMs: options.timeoutMs });
  return {
    home,
    env,
    configPath: join(home, 'config', 'cachix', 'config.toml'),
    run,
    spawn,
    create: (name, url, options = {}) => {
      const args = ['create', name, ...(url === undefined ? [] : ['--url', url]), ...(options.flags ?? [])];
      return run(args, { env: options.env });
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
