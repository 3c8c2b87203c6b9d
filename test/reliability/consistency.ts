import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBase32 } from '../../src/nix/base32.js';
import { formatHashBase32 } from '../../src/nix/hash.js';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { CACHIX_BIN } from '../helpers/cli.js';
import { NO_SUBSTITUTERS, KEEP_BUILDER_LOG_OPEN, nixString, requireNix, retryKilledBuild, run } from '../helpers/nix.js';

/**
 * What a cache must never show a reader, whatever happened to the writer: a narinfo whose NAR
 * is missing, short, or not the bytes its FileHash names; a narinfo whose references have no
 * narinfo (Nix would fail half way through substituting); a NAR under a final name that is
 * not the file its name promises. Returns the problems found (empty: consistent).
 */
export interface ConsistencyReport {
  narinfos: number;
  problems: string[];
}

/** Reads a file of the cache by its path relative to the cache root; undefined when absent. */
export type CacheFileReader = (relative: string) => Promise<Buffer | undefined>;

export async function checkCacheConsistent(
  listNarinfos: () => Promise<string[]>,
  readCacheFile: CacheFileReader,
  options: { listNars?: () => Promise<string[]> } = {},
): Promise<ConsistencyReport> {
  const problems: string[] = [];
  const names = await listNarinfos();
  const present = new Set(names.map((name) => name.replace(/\.narinfo$/, '')));
  for (const name of names) {
    const text = await readCacheFile(name);
    if (text === undefined) {
      problems.push(`${name} was listed but cannot be read`);
      continue;
    }
    let info;
    try {
      info = parseNarInfo(text.toString('utf8'));
    } catch (error) {
      problems.push(`${name} does not parse: ${(error as Error).message}`);
      continue;
    }
    if (!info.storePath.includes(`/${name.replace(/\.narinfo$/, '')}-`)) problems.push(`${name} describes ${info.storePath}`);
    for (const reference of info.references) {
      const hash = reference.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      if (!present.has(hash)) problems.push(`${name} references ${reference}, which has no narinfo`);
    }
    const nar = await readCacheFile(info.url);
    if (nar === undefined) {
      problems.push(`${name} points at ${info.url}, which does not exist`);
      continue;
    }
    if (nar.length !== info.fileSize) problems.push(`${info.url} has ${nar.length} bytes, ${name} says FileSize ${info.fileSize}`);
    const digest = encodeBase32(createHash('sha256').update(nar).digest());
    if (!info.fileHash || formatHashBase32(info.fileHash) !== `sha256:${digest}`) {
      problems.push(
        `${info.url} hashes to sha256:${digest}, ${name} says FileHash ${info.fileHash ? formatHashBase32(info.fileHash) : 'nothing'}`,
      );
    }
  }
  if (options.listNars) {
    // A NAR is named by its own FileHash: a file under such a name with other bytes is a torn write.
    for (const narName of await options.listNars()) {
      const match = /^nar\/([0-9a-z]{52})\.nar(\.[a-z]+)?$/.exec(narName);
      if (!match) {
        if (!/(^|\/)\.tmp-/.test(narName)) problems.push(`unexpected file ${narName}`);
        continue;
      }
      const bytes = await readCacheFile(narName);
      const digest = bytes && encodeBase32(createHash('sha256').update(bytes).digest());
      if (digest !== match[1]) problems.push(`${narName} holds bytes hashing to ${digest}: a partial NAR under its final name`);
    }
  }
  return { narinfos: names.length, problems };
}

/** The two listers and the reader for a cache laid out in a local directory (file://, nginx's root). */
export function directoryCache(root: string): {
  listNarinfos: () => Promise<string[]>;
  listNars: () => Promise<string[]>;
  read: CacheFileReader;
  tempFiles: () => Promise<string[]>;
} {
  const entries = async (dir: string): Promise<string[]> => readdir(join(root, dir)).catch(() => []);
  return {
    listNarinfos: async () => (await entries('.')).filter((name) => name.endsWith('.narinfo')),
    listNars: async () => (await entries('nar')).map((name) => `nar/${name}`),
    read: async (relative) => readFile(join(root, relative)).catch(() => undefined),
    tempFiles: async () =>
      [...(await entries('.')), ...(await entries('nar')).map((name) => `nar/${name}`)].filter((name) => /(^|\/)\.tmp-|\.tmp-/.test(name)),
  };
}

/** Reads a cache file over HTTP (nginx, s3rver's anonymous GET): what Nix itself would read. */
export function httpReader(baseUrl: string): CacheFileReader {
  return async (relative) => {
    const response = await fetch(`${baseUrl.replace(/\/$/, '')}/${relative}`);
    if (response.status === 404 || response.status === 403) return undefined;
    if (!response.ok) throw new Error(`GET ${relative} answered ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  };
}

/**
 * Builds, with real Nix in one nix-build, a chain of `count` paths, each holding `megabytes` of
 * random data plus some text and referring to the one before: a closure whose upload takes a
 * while and must go in dependency order. Returns the paths, deepest dependency first.
 */
export async function buildChain(tag: string, count: number, megabytes: number, extraDeps: string[] = []): Promise<string[]> {
  requireNix();
  const dir = await mkdtemp(join(tmpdir(), 'cachix-chain-'));
  const salt = `${process.pid}-${Date.now()}-${Math.random()}`;
  const script = `export PATH=/bin:/usr/bin\nset -e\nmkdir -p $out/share\nhead -c ${megabytes * 1_000_000} /dev/urandom > $out/share/random.bin\nseq 1 $((20000 + index)) > $out/share/numbers.txt\necho "$prev $extra" > $out/share/previous\n${KEEP_BUILDER_LOG_OPEN}\n`;
  const extra = extraDeps.map((dep) => `(builtins.storePath ${JSON.stringify(dep)})`).join(' ');
  const expression = `let mk = i: derivation {
  name = "${tag}-" + toString i;
  system = builtins.currentSystem;
  preferLocalBuild = true;
  builder = "/bin/bash";
  args = [ "-c" ${nixString(script)} ];
  prev = if i == 0 then "" else mk (i - 1);
  extra = [ ${extra} ];
  index = i;
  salt = ${JSON.stringify(salt)};
};
in builtins.genList mk ${count}`;
  const lines = [expression];
  const file = join(dir, 'default.nix');
  await writeFile(file, lines.join('\n'));
  const out = await retryKilledBuild(() => run('nix-build', [file, '--no-out-link', '--quiet', ...NO_SUBSTITUTERS]));
  await rm(dir, { recursive: true, force: true });
  return out.trim().split('\n');
}

export interface KilledRun {
  /** 'SIGKILL' when our kill landed; null when the push had already exited by itself. */
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/**
 * Starts the real CLI and SIGKILLs it as soon as `reached` holds (asked every 20 ms while it runs):
 * a kill point chosen by what the cache shows, not by a guess at how long the push takes.
 */
export function runAndKillWhen(args: string[], env: NodeJS.ProcessEnv, reached: () => Promise<boolean>): Promise<KilledRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CACHIX_BIN, ...args], {
      env: { ...process.env, CI: 'true', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let running = true;
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // A bound even when the point is never reached: no test waits forever on a child.
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const watch = async (): Promise<void> => {
      while (running) {
        if (await reached().catch(() => false)) {
          child.kill('SIGKILL');
          return;
        }
        await new Promise((resolveSleep) => setTimeout(resolveSleep, 20));
      }
    };
    child.on('spawn', () => void watch());
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running = false;
      clearTimeout(guard);
      resolve({ code, signal, stderr });
    });
  });
}
