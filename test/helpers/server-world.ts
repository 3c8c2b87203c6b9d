import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCachixEnv, type CachixEnv } from './cachix-env.js';
import { startNginx, type NginxOptions, type RunningNginx } from './nginx.js';
import { startS3rver, type RunningS3rver } from './s3rver.js';

/** One cachix environment with every kind of server beside it: a folder, nginx and s3rver. */
export interface ServerWorld {
  world: CachixEnv;
  /** A scratch folder for file caches and the test's own files. */
  scratch: string;
  nginx: RunningNginx;
  /** Its credentials are in world.env, so s3:// URLs work as given. */
  s3: RunningS3rver;
  stop(): Promise<void>;
}

export async function startServerWorld(name: string, nginxOptions: NginxOptions = {}): Promise<ServerWorld> {
  const world = await makeCachixEnv();
  const scratch = await mkdtemp(join(tmpdir(), `cachix-${name}-`));
  const [nginx, s3] = await Promise.all([startNginx(nginxOptions), startS3rver()]);
  Object.assign(world.env, s3.env);
  return {
    world,
    scratch,
    nginx,
    s3,
    stop: async () => {
      await Promise.all([world.cleanup(), nginx.stop(), s3.stop(), rm(scratch, { recursive: true, force: true })]);
    },
  };
}
