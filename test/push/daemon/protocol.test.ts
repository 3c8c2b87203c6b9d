// The daemon against cachix's wire protocol: a raw socket client writes the JSON lines of cachix's
// src/Cachix/Daemon/PROTOCOL.md as they stand there, and reads back what a real push of real
// Nix-built paths makes the daemon say.
import { existsSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, makeLocalCache, type CachixEnv, type LocalCache } from '../../helpers/cachix-env.js';
import { startCachix, waitUntil, type RunningCachix } from '../../helpers/daemon.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { startNginx, type RunningNginx } from '../../helpers/nginx.js';
import { KEEP_BUILDER_LOG_OPEN, NO_SUBSTITUTERS, hashOf, requireNix, run } from '../../helpers/nix.js';
import { hasNarinfo } from '../../helpers/cache-files.js';

/** A connection that writes lines as given and keeps every line it reads, parsed. */
interface RawClient {
  write(line: string): void;
  received: Array<Record<string, unknown>>;
  /** Resolves with the messages so far once `until` holds for one of them. */
  waitFor(what: string, until: (message: Record<string, unknown>) => boolean): Promise<Array<Record<string, unknown>>>;
  closed: Promise<void>;
  end(): void;
}

function rawClient(socketPath: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(socketPath);
    const received: Array<Record<string, unknown>> = [];
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += String(chunk);
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        received.push(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
        buffered = buffered.slice(newline + 1);
      }
    });
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        write: (line) => void socket.write(`${line}\n`),
        received,
        waitFor: (what, until) =>
          waitUntil(what, () => received.some(until) && received, { timeoutMs: 60_000, details: () => JSON.stringify(received, null, 1) }),
        closed,
        end: () => socket.end(),
      }),
    );
  });
}

type EventMessage = { tag: string; contents?: unknown };
const eventsOf = (messages: Array<Record<string, unknown>>): EventMessage[] =>
  messages
    .filter((message) => message.tag === 'DaemonPushEvent')
    .map((message) => (message.contents as { eventMessage: EventMessage }).eventMessage);
const isFinished = (message: Record<string, unknown>): boolean =>
  message.tag === 'DaemonPushEvent' && (message.contents as { eventMessage: EventMessage }).eventMessage.tag === 'PushFinished';
const pathsTagged = (events: EventMessage[], tag: string): string[] =>
  events
    .filter((event) => event.tag === tag)
    .map((event) => (Array.isArray(event.contents) ? (event.contents[0] as string) : (event.contents as string)));

/** PROTOCOL.md's ClientPushRequest example as printed there, with our paths in place of its two. */
function documentedPushRequest(paths: string[], subscribe = true): string {
  return `{
  "tag": "ClientPushRequest",
  "contents": {
    "storePaths": ${JSON.stringify(paths)},
    "subscribeToUpdates": ${subscribe}
  }
}`.replace(/\n\s*/g, ' ');
}

describe('the daemon speaks cachix protocol', () => {
  let local: LocalCache;
  let world: CachixEnv;
  let socket: string;
  /** a; b and c each refer to a; d, e, f on their own. */
  let built: Record<'a' | 'b' | 'c' | 'd' | 'e' | 'f', string>;
  const started: RunningCachix[] = [];

  beforeAll(async () => {
    requireNix();
    local = await makeLocalCache('dproto');
    world = local.world;
    socket = join(world.home, 'run', 'cachix-daemon.sock');
    const file = join(local.work, 'paths.nix');
    const drv = (name: string, script: string, extra = ''): string =>
      `${name} = derivation { name = "dproto-${name}"; system = builtins.currentSystem; preferLocalBuild = true; builder = "/bin/sh"; inherit salt; ${extra}
        args = [ "-c" "${script}; ${KEEP_BUILDER_LOG_OPEN}" ]; };`;
    await writeFile(
      file,
      `{ salt }: rec {
  ${drv('a', 'echo a > $out')}
  ${drv('b', 'echo $a > $out', 'inherit a;')}
  ${drv('c', 'echo $a > $out', 'inherit a;')}
  ${drv('d', 'echo d > $out')}
  ${drv('e', 'echo e > $out')}
  ${drv('f', 'echo f > $out')}
}`,
    );
    const salt = `${process.pid}-${Date.now()}-${Math.random()}`;
    const names = ['a', 'b', 'c', 'd', 'e', 'f'] as const;
    const out = await run('nix-build', [
      file,
      '--argstr',
      'salt',
      salt,
      '--no-out-link',
      '--quiet',
      ...NO_SUBSTITUTERS,
      ...names.flatMap((n) => ['-A', n]),
    ]);
    const paths = out.trim().split('\n');
    built = Object.fromEntries(names.map((name, index) => [name, paths[index]!])) as typeof built;
  });
  afterEach(async () => {
    for (const daemon of started.splice(0)) {
      daemon.kill('SIGKILL');
      await daemon.done;
    }
  });
  afterAll(() => local?.cleanup());

  const startDaemon = async (cache: string, extra: string[] = [], at = socket): Promise<RunningCachix> => {
    const daemon = startCachix(['daemon', 'run', cache, '--socket', at, ...extra], world.env);
    started.push(daemon);
    await daemon.waitForStderr(/listening on/);
    return daemon;
  };

  it('ping, diagnostics and pushes as PROTOCOL.md shows them: per-path events, PushFinished once per request; ClientStop gets DaemonExit', async () => {
    const daemon = await startDaemon('dproto', ['--narinfo-batch-timeout', '0']);
    const client = await rawClient(socket);
    client.write('{ "tag": "ClientPing" }');
    client.write('{ "tag": "ClientDiagnosticsRequest" }');
    await client.waitFor('DaemonDiagnosticsResult', (message) => message.tag === 'DaemonDiagnosticsResult');
    expect(client.received[0]).toEqual({ tag: 'DaemonPong' });
    expect(client.received[1]).toEqual({
      tag: 'DaemonDiagnosticsResult',
      contents: {
        diagCacheName: 'dproto',
        diagCacheUri: `file://${local.cacheDir}`,
        diagCachePublic: true,
        diagHasSigningKey: true,
        diagAuthOk: true,
        diagError: null,
      },
    });

    // a first, alone: uploaded.
    const first = await rawClient(socket);
    first.write(documentedPushRequest([built.a]));
    const firstEvents = eventsOf(await first.waitFor('PushFinished of the first request', isFinished));
    expect(firstEvents.map((event) => event.tag)).toEqual([
      'PushStarted',
      'PushStorePathAttempt',
      'PushStorePathProgress',
      'PushStorePathDone',
      'PushFinished',
    ]);
    expect(firstEvents[1]).toEqual({ tag: 'PushStorePathAttempt', contents: [built.a, expect.any(Number), { retryCount: 0 }] });
    // A one-field constructor carries the bare value in contents, never a one-element array.
    expect(firstEvents[3]).toEqual({ tag: 'PushStorePathDone', contents: built.a });

    // b and c (both refer to a) in two requests at once, and a path that is not in the store:
    // a is skipped for both, each hears its own closure, and each request finishes once.
    const [second, third] = await Promise.all([rawClient(socket), rawClient(socket)]);
    const missing = '/nix/store/00000000000000000000000000000000-dproto-missing';
    second.write(documentedPushRequest([built.b, missing]));
    third.write(documentedPushRequest([built.c]));
    const [secondAll, thirdAll] = await Promise.all([
      second.waitFor('PushFinished of b', isFinished),
      third.waitFor('PushFinished of c', isFinished),
    ]);
    for (const [messages, top] of [
      [secondAll, built.b],
      [thirdAll, built.c],
    ] as const) {
      const events = eventsOf(messages);
      expect(events[0]).toEqual({ tag: 'PushStarted' });
      expect(events.filter((event) => event.tag === 'PushFinished')).toHaveLength(1);
      expect(events[events.length - 1]).toEqual({ tag: 'PushFinished' });
      expect(pathsTagged(events, 'PushStorePathSkipped')).toEqual([built.a]);
      expect(pathsTagged(events, 'PushStorePathDone')).toEqual([top]);
      const ids = new Set(messages.map((message) => (message.contents as { eventPushId: string }).eventPushId));
      expect(ids.size).toBe(1);
      expect([...ids][0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      for (const message of messages) {
        const stamp = (message.contents as { eventTimestamp: string }).eventTimestamp;
        expect(new Date(stamp).toISOString()).toBe(stamp);
      }
    }
    expect(eventsOf(secondAll)).toContainEqual({ tag: 'PushStorePathInvalid', contents: [missing, 'not a valid path in the Nix store'] });
    expect(hasNarinfo(local.cacheDir, built.b)).toBe(true);

    // Already pushed, asked again: every path of the closure skipped, PushFinished once.
    const again = await rawClient(socket);
    again.write(documentedPushRequest([built.b]));
    const againEvents = eventsOf(await again.waitFor('PushFinished of b again', isFinished));
    expect(againEvents.map((event) => event.tag)).toEqual(['PushStarted', 'PushStorePathSkipped', 'PushStorePathSkipped', 'PushFinished']);

    // Fire and forget: pushed, and that connection hears nothing.
    const quiet = await rawClient(socket);
    quiet.write(documentedPushRequest([built.d], false));
    await waitUntil('d in the cache', () => hasNarinfo(local.cacheDir, built.d));

    // Not JSON is skipped (the connection goes on); an unknown tag is answered with DaemonError.
    client.write('this is not json');
    client.write('{ "tag": "ClientFrobnicate" }');
    client.write('{ "tag": "ClientPing" }');
    await client.waitFor('the second pong', (message) => message === client.received.filter((m) => m.tag === 'DaemonPong')[1]);
    expect(client.received.slice(2)).toEqual([
      { tag: 'DaemonError', contents: 'Unknown message type ClientFrobnicate' },
      { tag: 'DaemonPong' },
    ]);

    client.write('{ "tag": "ClientStop" }');
    await Promise.all([client.closed, quiet.closed]);
    expect(client.received[client.received.length - 1]).toEqual({
      tag: 'DaemonExit',
      contents: { exitCode: 0, exitMessage: expect.stringMatching(/^pushed 4 paths/) },
    });
    expect(quiet.received).toEqual([{ tag: 'DaemonExit', contents: { exitCode: 0, exitMessage: expect.any(String) } }]);
    expect((await daemon.done).code).toBe(0);
  });

  it('--no-remote-stop refuses ClientStop with DaemonError and goes on; `daemon stop` says so, exit 2; SIGTERM stops it', async () => {
    const daemon = await startDaemon('dproto', ['--no-remote-stop']);
    const client = await rawClient(socket);
    client.write('{ "tag": "ClientStop" }');
    client.write('{ "tag": "ClientPing" }');
    await client.waitFor('the pong after the refused stop', (message) => message.tag === 'DaemonPong');
    expect(client.received).toEqual([{ tag: 'DaemonError', contents: 'Remote stop is disabled on this daemon' }, { tag: 'DaemonPong' }]);
    const stop = await world.run(['daemon', 'stop', '--socket', socket]);
    expect(stop.code).toBe(2);
    expect(stop.stderr.split('\n')[0]).toBe(`cachix: the daemon on ${socket} refused: Remote stop is disabled on this daemon`);
    const pushed = await world.run(['daemon', 'push', '--socket', socket, '--wait', built.e]);
    expect(pushed.code, pushed.stderr).toBe(0);
    daemon.kill('SIGTERM');
    expect((await daemon.done).code).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('our client: push --wait follows the events and prints one summary (--quiet: only it); doctor; a stalled daemon is given up on', async () => {
    const daemon = await startDaemon('dproto');
    const [loud, quiet] = [
      await world.run(['daemon', 'push', '--socket', socket, '--wait', built.f]),
      await world.run(['daemon', 'push', '--socket', socket, '--wait', '--quiet', built.f]),
    ];
    expect(loud.code, loud.stderr).toBe(0);
    expect(loud.stderr).toBe(`pushed ${built.f}\nthe daemon pushed 1 paths, 0 were already in the cache\n`);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('the daemon pushed 0 paths, 1 were already in the cache\n');

    const doctor = await world.run(['daemon', 'doctor', '--socket', socket]);
    expect(doctor.code, doctor.stderr).toBe(0);
    expect(doctor.stdout).toContain(`ok    daemon: answers on ${socket}`);
    expect(doctor.stdout).toContain(`ok    cache: dproto (file://${local.cacheDir}, public)`);
    expect(doctor.stdout).toContain('ok    server: answers and accepts the daemon');

    // A daemon that stops answering (SIGSTOP: the kernel still accepts the connection).
    process.kill(daemon.pid, 'SIGSTOP');
    try {
      const stalled = await world.run([
        'daemon',
        'push',
        '--socket',
        socket,
        '--wait',
        '--keep-alive-interval',
        '1',
        '--keep-alive-timeout',
        '2',
        built.c,
      ]);
      expect(stalled.code).toBe(1);
      expect(stalled.stderr.split('\n')[0]).toBe(`cachix: the daemon on ${socket} answered no ping for 2 s`);
    } finally {
      process.kill(daemon.pid, 'SIGCONT');
    }
    const stopped = await world.run(['daemon', 'stop', '--socket', socket]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/^pushed \d+ paths/);
    expect((await daemon.done).code).toBe(0);
  });

  it('--narinfo-cache-ttl: a path found or pushed is not looked up again within it; 0 looks every time', async () => {
    // a and b pushed; a's narinfo then removed behind the daemon's back; c (which refers to a) pushed.
    const outcome = async (ttl: string): Promise<EventMessage[]> => {
      const narinfo = join(local.cacheDir, `${hashOf(built.a)}.narinfo`);
      const daemon = await startDaemon('dproto', ['--narinfo-cache-ttl', ttl, '--narinfo-batch-timeout', '0']);
      const client = await rawClient(socket);
      client.write(documentedPushRequest([built.b]));
      await client.waitFor('b pushed', isFinished);
      await unlink(narinfo);
      const next = await rawClient(socket);
      next.write(documentedPushRequest([built.c]));
      const events = eventsOf(await next.waitFor('c pushed', isFinished));
      expectOk(await world.run(['daemon', 'stop', '--socket', socket]), 'stop');
      await daemon.done;
      return events;
    };
    const trusted = await outcome('300');
    expect(pathsTagged(trusted, 'PushStorePathSkipped')).toContain(built.a);
    expect(hasNarinfo(local.cacheDir, built.a)).toBe(false);
    const asked = await outcome('0');
    expect(pathsTagged(asked, 'PushStorePathDone')).toContain(built.a);
    expect(hasNarinfo(local.cacheDir, built.a)).toBe(true);
  });

  it('daemon run --quiet: its stderr holds only the closing summary line', async () => {
    expectOk(await world.create('dquiet'), 'create dquiet');
    const quietSocket = join(world.home, 'run', 'quiet.sock');
    const daemon = startCachix(['daemon', 'run', 'dquiet', '--socket', quietSocket, '--quiet'], world.env);
    started.push(daemon);
    // It says nothing when it listens: the socket appearing is the sign.
    await waitUntil('the quiet daemon to listen', () => existsSync(quietSocket), { details: daemon.stderr });
    const client = await rawClient(quietSocket);
    client.write(documentedPushRequest([built.b]));
    expect(pathsTagged(eventsOf(await client.waitFor('b pushed', isFinished)), 'PushStorePathDone').sort()).toEqual(
      [built.a, built.b].sort(),
    );
    client.write('{ "tag": "ClientStop" }');
    const exited = await daemon.done;
    expect(exited.code).toBe(0);
    expect(exited.stderr).toMatch(/^pushed 2 paths \(\d+(\.\d)? [KMG]?i?B\)\n$/);
  });

  describe('a path the server refuses', () => {
    let nginx: RunningNginx;
    let proxy: FaultProxy;
    beforeAll(async () => {
      nginx = await startNginx();
      proxy = await startFaultProxy(nginx.url);
      expectOk(await world.create('refusing', proxy.url), 'create refusing');
    });
    afterAll(async () => {
      await proxy?.stop();
      await nginx?.stop();
    });

    it('PushStorePathFailed with the reason, the others pushed, PushFinished once; DaemonExit says 3', async () => {
      proxy.addRule({ method: 'PUT', path: `${hashOf(built.e)}.narinfo`, times: Infinity, action: { kind: 'status', status: 403 } });
      const daemon = await startDaemon('refusing', ['--narinfo-batch-timeout', '0'], join(world.home, 'run', 'refusing.sock'));
      const client = await rawClient(join(world.home, 'run', 'refusing.sock'));
      client.write(documentedPushRequest([built.d, built.e]));
      await client.waitFor('PushStarted', (message) => message.tag === 'DaemonPushEvent');
      // Stopping drains: a failing path is given up after three tries, not ten.
      const stopper = await rawClient(join(world.home, 'run', 'refusing.sock'));
      stopper.write('{ "tag": "ClientStop" }');
      const messages = await client.waitFor('PushFinished', isFinished);
      const events = eventsOf(messages);
      expect(events.filter((event) => event.tag === 'PushFinished')).toHaveLength(1);
      expect(events[events.length - 1]).toEqual({ tag: 'PushFinished' });
      expect(pathsTagged(events, 'PushStorePathDone')).toEqual([built.d]);
      const failed = events.filter((event) => event.tag === 'PushStorePathFailed');
      expect(failed).toEqual([{ tag: 'PushStorePathFailed', contents: [built.e, expect.stringMatching(/403/)] }]);
      const retries = events.filter((event) => event.tag === 'PushStorePathAttempt' && (event.contents as unknown[])[0] === built.e);
      expect(retries.map((event) => ((event.contents as unknown[])[2] as { retryCount: number }).retryCount)).toEqual(
        retries.map((_, index) => index),
      );
      await stopper.closed;
      expect(stopper.received).toEqual([
        { tag: 'DaemonExit', contents: { exitCode: 3, exitMessage: expect.stringMatching(/1 could not be pushed/) } },
      ]);
      expect((await daemon.done).code).toBe(3);
    });
  });
});
