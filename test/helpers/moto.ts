import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, PutBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, waitForPort } from './nginx.js';

export interface MotoOptions {
  bucket?: string;
  /**
   * Check credentials and signatures as S3 does: an IAM user and key are made first (moto's
   * INITIAL_NO_AUTH_ACTION_COUNT lets those requests through), and every later request must be
   * signed with that key.
   */
  authentication?: boolean;
}

export interface RunningMoto {
  /** http://127.0.0.1:PORT: the endpoint= for s3:// URLs. */
  endpoint: string;
  bucket: string;
  /** `s3://BUCKET?endpoint=…&scheme=http&region=us-east-1`. */
  s3Url: string;
  /** The bucket over plain HTTP, readable by anyone through its bucket policy: a substituter URL for Nix 2.8. */
  httpUrl: string;
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  /** What moto printed, for a test that fails. */
  log(): string;
  stop(): Promise<void>;
}

const INSTALL_HINT =
  "these tests need moto's S3 server (moto_server, moto 5): `pip install 'moto[server]>=5,<6'` " +
  '(or set MOTO_SERVER to its path); .ci/run installs it when it is missing';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * moto_server from MOTO_SERVER, PATH, or where pip and pyenv put it: CI may run us as root with a
 * PATH that has no pyenv shims in it.
 */
export function findMotoServer(env = process.env): string {
  const candidates = [
    env.MOTO_SERVER,
    ...(env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'moto_server')),
    join(homedir(), '.pyenv', 'shims', 'moto_server'),
    join(homedir(), '.local', 'bin', 'moto_server'),
    '/opt/moto/bin/moto_server',
  ];
  const found = candidates.find((candidate) => candidate !== undefined && candidate !== '' && executable(candidate));
  if (!found) throw new Error(INSTALL_HINT);
  return found;
}

/** An unsigned IAM Query API call: moto routes it by the credential scope, and lets it through while its no-auth count lasts. */
async function iam(endpoint: string, parameters: Record<string, string>): Promise<string> {
  const response = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({ ...parameters, Version: '2010-05-08' }).toString(),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`moto IAM ${parameters.Action} answered ${response.status}: ${text}`);
  return text;
}

function xmlField(text: string, name: string): string {
  const value = new RegExp(`<${name}>([^<]+)</${name}>`).exec(text)?.[1];
  if (!value) throw new Error(`moto's answer has no ${name}: ${text}`);
  return value;
}

/** The server answering on the port checks no signatures: another test's moto took the port first. */
class NotCheckingSignatures extends Error {}

/**
 * Returns once moto checks every request: a request signed with a wrong secret is refused. moto
 * lets INITIAL_NO_AUTH_ACTION_COUNT requests through unchecked, counting them as they come; any
 * it did not count (setup calls it handles another way) would let a test's first requests through
 * with any secret. Each refused probe proves the count is spent; each accepted one spends one.
 */
async function untilSignaturesChecked(moto: RunningMoto): Promise<void> {
  const wrong = motoClient({ endpoint: moto.endpoint, env: { ...moto.env, AWS_SECRET_ACCESS_KEY: `${moto.env.AWS_SECRET_ACCESS_KEY}x` } });
  try {
    for (let probe = 0; probe < 10; probe++) {
      try {
        await wrong.send(new HeadBucketCommand({ Bucket: moto.bucket }));
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403) return;
        throw error;
      }
    }
    throw new NotCheckingSignatures(`the server on ${moto.endpoint} still accepts a wrong secret after 10 requests`);
  } finally {
    wrong.destroy();
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Its own process group: the pyenv shim and werkzeug's threads go with it.
  process.kill(-child.pid!, 'SIGTERM');
  const killed = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(killed);
}

/** A client of the test's own for this server (path-style, its credentials); destroy it after use. */
export function motoClient(moto: Pick<RunningMoto, 'endpoint' | 'env'>): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: moto.env.AWS_ACCESS_KEY_ID, secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY },
  });
}

/**
 * A real moto S3 server (Python's moto 5) on a loopback port, with one bucket that anyone may read
 * (a bucket policy allowing s3:GetObject, as a public cache bucket has), so Nix substitutes from it
 * over plain HTTP. Unlike s3rver it pages listings at 1,000 keys and, with `authentication`,
 * checks SigV4 signatures.
 */
export async function startMoto(options: MotoOptions = {}): Promise<RunningMoto> {
  // A port found free may be taken by another file's server before this moto binds it; ours then
  // exits, and the one answering there checks no signatures. Seen as such, it is tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMotoOnce(options);
    } catch (error) {
      if (!(error instanceof NotCheckingSignatures) || attempt === 3) throw error;
    }
  }
}

async function startMotoOnce(options: MotoOptions): Promise<RunningMoto> {
  const bucket = options.bucket ?? 'nix-cache';
  const program = findMotoServer();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  // Three IAM calls, then CreateBucket, pass unchecked; every request after them is checked.
  const env = { ...process.env, ...(options.authentication ? { INITIAL_NO_AUTH_ACTION_COUNT: '4' } : {}) };
  const child = spawn(program, ['-H', '127.0.0.1', '-p', String(port)], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitedWith: string | undefined;
  child.once('exit', (code, signal) => (exitedWith = `moto_server exited (${code ?? signal}) before listening:\n${output}`));
  child.once('error', (error) => (exitedWith = `moto_server could not start (${error.message}); ${INSTALL_HINT}`));
  try {
    await waitForPort(port, () => exitedWith, 30_000);
    let credentials = { AWS_ACCESS_KEY_ID: 'moto', AWS_SECRET_ACCESS_KEY: 'moto', AWS_REGION: 'us-east-1' };
    if (options.authentication) {
      await iam(endpoint, { Action: 'CreateUser', UserName: 'cachix-test' });
      const key = await iam(endpoint, { Action: 'CreateAccessKey', UserName: 'cachix-test' });
      // The AWS-managed policy ARNs do not exist in moto: an inline policy instead.
      await iam(endpoint, {
        Action: 'PutUserPolicy',
        UserName: 'cachix-test',
        PolicyName: 'cache',
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }),
      });
      credentials = {
        AWS_ACCESS_KEY_ID: xmlField(key, 'AccessKeyId'),
        AWS_SECRET_ACCESS_KEY: xmlField(key, 'SecretAccessKey'),
        AWS_REGION: 'us-east-1',
      };
    }
    const running: RunningMoto = {
      endpoint,
      bucket,
      s3Url: `s3://${bucket}?endpoint=127.0.0.1:${port}&scheme=http&region=us-east-1`,
      httpUrl: `${endpoint}/${bucket}`,
      env: credentials,
      log: () => output,
      stop: () => stopProcess(child),
    };
    const client = motoClient(running);
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const policy = {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` }],
      };
      await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
    } finally {
      client.destroy();
    }
    if (options.authentication) await untilSignaturesChecked(running);
    return running;
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
}
