import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningRclone {
  /** http://127.0.0.1:PORT, serving `root`. */
  url: string;
  /** The folder rclone serves; a cache at `${url}/c` has its files in `${root}/c`. */
  root: string;
  /** Every request rclone has logged so far (method and path), oldest first. */
  requests(): Array<{ method: string; path: string }>;
  stop(): Promise<void>;
}

/**
 * A real `rclone serve webdav` (Debian's rclone) on a port the kernel picks on 127.0.0.1, serving
 * a fresh temp folder with rclone's defaults, as a user would start it. Unlike nginx with
 * `create_full_put_path`, it creates no folder on PUT (a PUT into a missing folder answers 404).
 */
export async function startRclone(options: { readOnly?: boolean } = {}): Promise<RunningRclone> {
  if (spawnSync('rclone', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('these tests need rclone (its WebDAV server): apt-get install rclone');
  }
  const dir = await mkdtemp(join(tmpdir(), 'cachix-rclone-'));
  const root = join(dir, 'root');
  await mkdir(root);
  // An empty config of its own, so rclone neither reads nor complains about the user's.
  const configFile = join(dir, 'rclone.conf');
  await writeFile(configFile, '');
  // -v logs each request ("INFO  : /nar/: MKCOL from 127.0.0.1:…"), which tests read to count requests.
  const args = [
    'serve',
    'webdav',
    root,
    '--addr',
    '127.0.0.1:0',
    '--config',
    configFile,
    '-v',
    ...(options.readOnly ? ['--read-only'] : []),
  ];
  const child = spawn('rclone', args, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code) => ((exitCode = code), resolve())));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rclone serve webdav did not start within 10 s:\n${log}`)), 10_000);
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const started = /WebDav Server started on (?:\[)?(http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
      if (started) {
        clearTimeout(timer);
        resolve(started[1]!);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`rclone serve webdav exited with ${exitCode}:\n${log}`));
    });
  });
  return {
    url,
    root,
    requests() {
      const requests: Array<{ method: string; path: string }> = [];
      for (const match of log.matchAll(/INFO {2}: (\/\S*): ([A-Z]+) from /g)) requests.push({ method: match[2]!, path: match[1]! });
      return requests;
    },
    async stop() {
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
