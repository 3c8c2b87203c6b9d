// Where the push daemon listens, and who may use it: a unix socket, 0600, in a folder of its user
// that no one else can write. A socket file is refused unless it is ours; a dead daemon's socket is taken over.
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, type Server, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.js';
import { checkOwnedFolder, makeFolder } from './owned-folder.js';

/** As cachix: CACHIX_DAEMON_SOCKET, else $XDG_RUNTIME_DIR/cachix/, else $XDG_CACHE_HOME/cachix/. */
export function defaultSocketPath(env: NodeJS.ProcessEnv): string {
  if (env.CACHIX_DAEMON_SOCKET) return env.CACHIX_DAEMON_SOCKET;
  const base = env.XDG_RUNTIME_DIR || env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'cachix', 'cachix-daemon.sock');
}

const myUid = (): number => process.getuid?.() ?? 0;

type SocketState = 'absent' | 'live' | 'stale';

/** Refuses a path that is not a socket of ours; tells a live daemon from a dead one's leftover. */
async function inspectSocket(socketPath: string): Promise<SocketState> {
  let info;
  try {
    info = await lstat(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new UserError(`cannot look at ${socketPath}: ${(error as Error).message}`);
  }
  if (!info.isSocket()) {
    throw new UserError(`${socketPath} exists and is not a socket`, 'it is not ours: choose another path with --socket PATH');
  }
  if (info.uid !== myUid()) {
    throw new UserError(
      `${socketPath} belongs to another user (uid ${info.uid})`,
      "that user's daemon pushes with that user's keys; start your own with --socket PATH",
    );
  }
  try {
    (await openConnection(socketPath)).destroy();
    return 'live';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') return 'stale';
    throw new UserError(`cannot connect to ${socketPath}: ${(error as Error).message}`);
  }
}

function openConnection(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * For `daemon run`: listens on the path, in a folder only we can write. Binding first and
 * looking only when the path is taken leaves no gap between "free" and "ours": of two daemons
 * started at once, the second is told one is running. A dead daemon's socket is taken over.
 */
export async function listenOnSocket(server: Server, socketPath: string, log: (line: string) => void): Promise<void> {
  const dir = dirname(socketPath);
  await makeFolder(dir, { recursive: true, mode: 0o700 });
  await checkOwnedFolder(dir, "the socket's folder");
  for (let attempt = 1; ; attempt++) {
    try {
      await listenPrivately(server, socketPath);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        throw new UserError(`cannot listen on ${socketPath}: ${(error as Error).message}`, 'choose another path with --socket PATH');
      }
    }
    const state = await inspectSocket(socketPath);
    if (state === 'live' || attempt === 3) {
      throw new UserError(
        `a cachix daemon is already running on ${socketPath}`,
        `stop it first: cachix daemon stop --socket ${socketPath}`,
      );
    }
    if (state === 'stale') {
      log(`taking over ${socketPath}: the daemon that made it is gone`);
      await unlink(socketPath).catch(() => undefined);
    }
  }
  await chmod(socketPath, 0o600);
}

/** Only our user may connect: the socket is made 0600 from the start, not chmod-ed afterwards. */
async function listenPrivately(server: Server, socketPath: string): Promise<void> {
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      const failed = (error: Error): void => reject(error);
      server.once('error', failed);
      server.listen(socketPath, () => {
        server.off('error', failed);
        resolve();
      });
    });
  } finally {
    process.umask(previousUmask);
  }
}

/** For `daemon push` and `stop`: a connection to a live daemon of ours, or one clear line. */
export async function connectToDaemon(socketPath: string): Promise<Socket> {
  const state = await inspectSocket(socketPath);
  if (state !== 'live') {
    throw new UserError(
      `no cachix daemon is running on ${socketPath}${state === 'stale' ? ' (its socket is left from one that stopped)' : ''}`,
      'start one: cachix daemon run CACHE (or pass its --socket PATH)',
    );
  }
  return openConnection(socketPath);
}
