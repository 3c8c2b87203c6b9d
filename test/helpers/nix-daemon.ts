import { spawn, type ChildProcess } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A real nix-daemon (run as root, as in a multi-user install) on its own socket, so tests never
 * touch /nix/var/nix/daemon-socket/socket or each other. It reads the system config from the
 * test's NIX_CONF_DIR; clients reach it with NIX_REMOTE=unix://<socket>.
 */
export interface NixDaemon {
  socket: string;
  /** For clients: NIX_REMOTE pointing at this daemon. */
  remote: string;
  log(): string;
  stop(): Promise<void>;
}

async function waitForSocket(path: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nix-daemon exited with ${child.exitCode}: ${output()}`);
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nix-daemon did not create ${path} within 15 s: ${output()}`);
}

export async function startNixDaemon(options: { confDir: string; stateDir: string; env?: NodeJS.ProcessEnv }): Promise<NixDaemon> {
  const socket = join(options.stateDir, 'daemon.socket');
  // Its own process group, so stop() also ends the per-connection children it forks.
  const child = spawn('nix-daemon', [], {
    env: {
      ...(options.env ?? process.env),
      NIX_CONF_DIR: options.confDir,
      NIX_DAEMON_SOCKET_PATH: socket,
      // The daemon also reads root's user config: point it at an empty folder.
      XDG_CONFIG_HOME: join(options.stateDir, 'daemon-xdg'),
      XDG_CONFIG_DIRS: join(options.stateDir, 'daemon-xdg'),
      HOME: options.stateDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await waitForSocket(socket, child, () => output);
  return {
    socket,
    remote: `unix://${socket}`,
    log: () => output,
    async stop() {
      if (child.exitCode !== null || child.pid === undefined) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid, 'SIGTERM');
      await exited;
      // The daemon leaves its socket file behind: a daemon started next on the same path would
      // be taken as ready at once, before it listens (connection refused).
      await rm(socket, { force: true });
    },
  };
}
