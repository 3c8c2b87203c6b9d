// Where the push daemon listens, and who may use it: a unix socket, 0600, in a directory only its
// user can enter. A socket file is refused unless it is ours; a dead daemon's socket is taken over.
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.js';

/** As cachix: CACHIX_DAEMON_SOCKET, else $XDG_RUNTIME_DIR/cachix/, else $XDG_CACHE_HOME/cachix/. */
export function defaultSocketPath(env: NodeJS.ProcessEnv): string {
  if (env.CACHIX_DAEMON_SOCKET) return env.CACHIX_DAEMON_SOCKET;
  const base = env.XDG_RUNTIME_DIR || env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'cachix', 'cachix-daemon.sock');
}

const myUid = (): number => process.getuid?.() ?? 0;

/** The socket's own folder: made 0700 when missing; one that belongs to someone else is refused. */
export async function preparePrivateDirectory(socketPath: string): Promise<void> {
  const dir = dirname(socketPath);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (info.uid !== myUid() && myUid() !== 0) {
    throw new UserError(`${dir} belongs to another user (uid ${info.uid})`, 'choose a socket in a folder of your own with --socket PATH');
  }
}

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

/** For `daemon run`: the path is free, or held by a dead daemon (removed); a live one is refused. */
export async function claimSocket(socketPath: string, log: (line: string) => void): Promise<void> {
  await preparePrivateDirectory(socketPath);
  const state = await inspectSocket(socketPath);
  if (state === 'live') {
    throw new UserError(`a cachix daemon is already running on ${socketPath}`, `stop it first: cachix daemon stop --socket ${socketPath}`);
  }
  if (state === 'stale') {
    log(`taking over ${socketPath}: the daemon that made it is gone`);
    await unlink(socketPath);
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
