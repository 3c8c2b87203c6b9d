import { defaultCachixDhallPath, defaultConfigPath } from './config-paths.js';
import { DEFAULT_STORE_DIR } from './nix/store-path.js';
import { redactSecrets, redactSecretShapes } from './redact.js';

// What every command gets: the global flags, the environment, where Nix keeps its store and its
// system config, and the streams to talk through. Commands never touch `process` directly, so a
// test can run one in-process with its own environment and capture what it prints.

export const DEFAULT_CACHIX_HOST = 'https://cachix.org';
export const DEFAULT_NIX_CONF_DIR = '/etc/nix';

/** Nix's store directory, as Nix reads it from the environment. */
export function storeDirOf(env: NodeJS.ProcessEnv): string {
  return env.NIX_STORE_DIR || DEFAULT_STORE_DIR;
}

/** Nix's system config directory (nix.conf, netrc), as Nix reads it from the environment. */
export function nixConfDirOf(env: NodeJS.ProcessEnv): string {
  return env.NIX_CONF_DIR || DEFAULT_NIX_CONF_DIR;
}

/** The part of a stream commands use: text out, and whether a person is watching. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface InputStream extends AsyncIterable<Buffer | string> {
  isTTY?: boolean;
}

export interface Context {
  configPath: string;
  /** cachix's own config, read when ours lacks the token or a key: `-c FILE.dhall`, else cachix's default path. */
  cachixDhallPath: string;
  verbose: boolean;
  /** The cachix API host (for cachix caches): --host/--hostname, then config, then https://cachix.org. */
  host: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Nix's store directory: NIX_STORE_DIR, as Nix reads it. */
  storeDir: string;
  /** Nix's system config directory (nix.conf, netrc): NIX_CONF_DIR, as Nix reads it. */
  nixConfDir: string;
  /** Results: public keys, verify's report. */
  stdout: OutputStream;
  /** Logs, warnings and progress. */
  stderr: OutputStream;
  stdin: InputStream;
  /** One line of log on stderr. */
  log(line: string): void;
}

export interface ContextOptions {
  config?: string;
  verbose?: boolean;
  host?: string;
  hostname?: string;
}

export interface ContextStreams {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: InputStream;
}

export function makeContext(
  options: ContextOptions,
  env: NodeJS.ProcessEnv = process.env,
  streams: ContextStreams = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
): Context {
  // A cachix user's `-c ~/.config/cachix/cachix.dhall` names cachix's config, not ours.
  const dhall = options.config?.endsWith('.dhall') ? options.config : undefined;
  const config = dhall ? undefined : options.config;
  // Every line a command prints passes redaction: a URL's password, a token or a key never
  // reaches a terminal or a CI log, whichever message happened to quote it.
  const stdout = redacting(streams.stdout, redactSecretShapes);
  const stderr = redacting(streams.stderr, redactSecrets);
  return {
    configPath: config ?? env.CACHIX_CONFIG ?? defaultConfigPath(env),
    cachixDhallPath: dhall ?? defaultCachixDhallPath(env),
    verbose: options.verbose === true,
    host: options.host ?? options.hostname ?? env.CACHIX_HOST,
    env,
    storeDir: storeDirOf(env),
    nixConfDir: nixConfDirOf(env),
    stdin: streams.stdin,
    stdout,
    stderr,
    log: (line) => void stderr.write(`${line}\n`),
  };
}

/** A terminal's size and resize events, which the push progress asks of stderr. */
interface SizedStream extends OutputStream {
  columns?: number;
  rows?: number;
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

function redacting(stream: SizedStream, redact: (text: string) => string): SizedStream {
  return {
    write: (text: string) => stream.write(redact(text)),
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
    get rows() {
      return stream.rows;
    },
    on: (event, listener) => stream.on?.(event, listener),
    off: (event, listener) => stream.off?.(event, listener),
  };
}
