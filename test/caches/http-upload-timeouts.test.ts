import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NarUpload } from '../../src/caches/cache.js';
import { createHttpCache } from '../../src/caches/http.js';
import { UserError } from '../../src/errors.js';
import type { NarInfo } from '../../src/nix/narinfo.js';
import { listenOnLoopback } from '../helpers/loopback.js';

/*
 * Uploads are timed by progress: a server that is slow but keeps taking bytes is waited for,
 * however long the whole body takes; one that stops taking bytes, or never answers once it has
 * them, is given up on. (undici's own headersTimeout runs from the last write to the socket, so
 * with this slow server it expired while megabytes were still buffered on their way, and the
 * upload failed at its end on every retry.)
 */

// bodyMs is also the upload's idle limit. Kernel buffers make a slow upload's progress bursty
// (the receiver's window opens in steps), so it is kept well above those pauses.
const LIMITS = { headersMs: 1500, bodyMs: 4000 };
const NAR_BYTES = 8 * 1024 * 1024;
let scratch: string;
let narFile: string;

const narInfo: NarInfo = {
  storePath: '/nix/store/00000000000000000000000000000000-upload-timeouts',
  url: 'nar/0000000000000000000000000000000000000000000000000000.nar',
  compression: 'none',
  fileHash: { algorithm: 'sha256', digest: new Uint8Array(32) },
  fileSize: NAR_BYTES,
  narHash: { algorithm: 'sha256', digest: new Uint8Array(32) },
  narSize: NAR_BYTES,
  references: [],
  sigs: [],
};

function narUpload(): NarUpload {
  return {
    narUrl: narInfo.url,
    fileSize: NAR_BYTES,
    fileHashBase32: '0'.repeat(52),
    compression: 'none',
    localPath: narFile,
    open: () => createReadStream(narFile),
  };
}

/** A server whose handling of each PUT body is scripted; it records what it got. */
async function server(handle: (req: IncomingMessage, res: ServerResponse, received: (bytes: number) => void) => void) {
  const puts: Array<{ path: string; bytes: number }> = [];
  const listening = await listenOnLoopback(
    createServer((req, res) => {
      const put = { path: req.url ?? '', bytes: 0 };
      puts.push(put);
      handle(req, res, (bytes) => (put.bytes += bytes));
    }),
  );
  const cache = createHttpCache(new URL(`http://127.0.0.1:${listening.port}/cache`), {
    retry: { baseMs: 20, capMs: 50, budgetMs: 1000, log: () => undefined },
    timeouts: LIMITS,
  });
  return {
    cache,
    puts,
    stop: async () => {
      await cache.close?.();
      await listening.stop();
    },
  };
}

async function failureOf(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  return { error, ms: Date.now() - started };
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cachix-upload-timeouts-'));
  narFile = join(scratch, 'nar');
  await writeFile(narFile, randomBytes(NAR_BYTES));
});
afterAll(async () => rm(scratch, { recursive: true, force: true }));

describe('upload timeouts go by progress, not by the clock', () => {
  it('a server that reads slowly but steadily gets the whole NAR, however long it takes', async () => {
    // About 1 MB/s: the 8 MiB body takes about 8 s, five times the 1.5 s headers limit, and the last
    // megabytes are still in the socket buffers for seconds after the last write.
    const slow = await server((req, res, received) => {
      req.on('data', (chunk: Buffer) => {
        received(chunk.length);
        req.pause();
        setTimeout(() => req.resume(), Math.ceil(chunk.length / 1000));
      });
      req.on('end', () => res.writeHead(201).end());
    });
    try {
      const started = Date.now();
      await slow.cache.upload(narUpload(), narInfo);
      expect(Date.now() - started).toBeGreaterThan(3 * LIMITS.headersMs);
      expect(slow.puts.map((put) => put.path)).toEqual([`/cache/${narInfo.url}`, '/cache/00000000000000000000000000000000.narinfo']);
      expect(slow.puts[0]!.bytes).toBe(NAR_BYTES);
    } finally {
      await slow.stop();
    }
  });

  it('a server that stops reading mid-upload: given up on after the idle limit, one UserError, no narinfo', async () => {
    const stuck = await server((req, _res, received) => {
      req.once('data', (chunk: Buffer) => {
        received(chunk.length);
        req.pause(); // …and never again
      });
    });
    try {
      const { error, ms } = await failureOf(stuck.cache.upload(narUpload(), narInfo));
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(
        /failed \d+ times in \d+ s; last error: the server took no data for 4 s while we were uploading$/,
      );
      expect(ms).toBeLessThan(10_000);
      expect(stuck.puts.some((put) => put.path.endsWith('.narinfo'))).toBe(false);
    } finally {
      await stuck.stop();
    }
  });

  it('a server that takes the whole NAR and never answers: given up on, one UserError, no narinfo', async () => {
    const silent = await server((req, _res, received) => {
      req.on('data', (chunk: Buffer) => received(chunk.length));
    });
    try {
      const { error, ms } = await failureOf(silent.cache.upload(narUpload(), narInfo));
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(
        /failed \d+ times in \d+ s; last error: no answer within \d+(\.\d)? s after the upload was sent$/,
      );
      expect(ms).toBeLessThan(15_000);
      expect(silent.puts[0]!.bytes).toBe(NAR_BYTES);
      expect(silent.puts.some((put) => put.path.endsWith('.narinfo'))).toBe(false);
    } finally {
      await silent.stop();
    }
  });
});
