import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { listenOnLoopback } from './loopback.js';

const execFileAsync = promisify(execFile);

/** A private certificate authority and a server certificate it signed for 127.0.0.1. */
export interface PrivateTls {
  dir: string;
  /** The CA certificate (PEM) to hand to clients: NODE_EXTRA_CA_CERTS=caPath. */
  caPath: string;
  key: Buffer;
  cert: Buffer;
  cleanup(): Promise<void>;
}

/** Makes a fresh CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) with the real openssl. */
export async function makePrivateTls(): Promise<PrivateTls> {
  if (spawnSync('openssl', ['version']).status !== 0) {
    throw new Error('the TLS tests need openssl: apt-get install openssl');
  }
  const dir = await mkdtemp(join(tmpdir(), 'cachix-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): Promise<unknown> => execFileAsync('openssl', args, { cwd: dir });
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=cachix test CA',
  );
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  );
  await writeFile(
    file('san.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.pem'),
    '-days',
    '2',
    '-extfile',
    file('san.ext'),
  );
  return {
    dir,
    caPath: file('ca.pem'),
    key: await readFile(file('server.key')),
    cert: await readFile(file('server.pem')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface RunningHttps {
  url: string;
  server: Server;
  stop(): Promise<void>;
}

/** An https server on a free 127.0.0.1 port with the private certificate. */
export async function startHttps(tls: PrivateTls, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RunningHttps> {
  const server = createServer({ key: tls.key, cert: tls.cert }, handler);
  const listening = await listenOnLoopback(server);
  return { url: `https://127.0.0.1:${listening.port}`, server, stop: listening.stop };
}
