import { describe, expect, it } from 'vitest';
import { buildProgram, type CliIo } from '../../src/cli.js';
import type { Command, Option } from 'commander';
import { BARE_PUSH_FLAGS, isBarePush } from '../../src/cli/bare-push.js';
import { PLAIN_PUSH_OPTIONS, plainPushPaths } from '../../src/cli/plain-push.js';

const A = '/nix/store/5601vs11k2wx20l78lb6ncf51nbrjpsm-probe.txt';
const B = '/nix/store/sy6pbma5288qr65bl58jr831416b1nmv-bench';

describe('plainPushPaths: which command lines start the closure query before parsing', () => {
  it('push CACHE STORE-PATH...: the paths, a trailing slash dropped as push drops it', () => {
    expect(plainPushPaths(['push', 'mycache', A, `${B}/`], {})).toEqual([A, B]);
  });

  it('options that leave the closure as it is are stepped over, with their values', () => {
    expect(plainPushPaths(['-c', 'other.toml', '--verbose', 'push', '-j', '4', 'mycache', '-m', 'zstd', '-l', '3', A], {})).toEqual([A]);
    expect(plainPushPaths(['push', 'mycache', A, '--jobs=2', '--exclude', '^/nix/store', '--omit-deriver', B], {})).toEqual([A, B]);
  });

  it('any other option, anywhere, leaves the command line to the parser', () => {
    for (const argv of [
      ['push', 'mycache', A, '--no-closure'],
      ['push', 'mycache', A, '--with-build-deps'],
      ['push', '--no-closure', A],
      ['push', '-v', '-j4', 'mycache', A],
      ['push', 'mycache', '--jobs4', A],
      ['push', 'mycache', '--', A],
      ['push', '--help'],
      ['push', 'mycache', A, '-c', 'other.toml'],
      ['--bogus', 'push', 'mycache', A],
    ]) {
      expect(plainPushPaths(argv, {}), argv.join(' ')).toBeUndefined();
    }
  });

  it('no paths (stdin), a ./result link, a path inside a store path, another command: undefined', () => {
    expect(plainPushPaths(['push', 'mycache'], {})).toBeUndefined();
    expect(plainPushPaths(['push', 'mycache', './result'], {})).toBeUndefined();
    expect(plainPushPaths(['push', 'mycache', `${A}/bin/x`], {})).toBeUndefined();
    expect(plainPushPaths(['verify', 'mycache', A], {})).toBeUndefined();
  });

  it('paths outside the store NIX_STORE_DIR names are not store paths', () => {
    expect(plainPushPaths(['push', 'mycache', A], { NIX_STORE_DIR: '/other/store' })).toBeUndefined();
    expect(
      plainPushPaths(['push', 'mycache', '/other/store/5601vs11k2wx20l78lb6ncf51nbrjpsm-x'], { NIX_STORE_DIR: '/other/store' }),
    ).toEqual(['/other/store/5601vs11k2wx20l78lb6ncf51nbrjpsm-x']);
  });
});

describe('the plain-push tables follow the options push accepts', () => {
  // Options that change which paths are pushed, or print instead of pushing: the parser alone decides.
  const LEFT_TO_THE_PARSER = new Set(['--no-closure', '--with-build-deps', '-h', '--help', '-V', '--version']);
  const io = { env: {}, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin } as unknown as CliIo;
  const program = buildProgram(io, () => undefined);
  const push = program.commands.find((command) => command.name() === 'push')!;
  const flagsOf = (option: Option): string[] => [option.short, option.long].filter((flag): flag is string => flag !== undefined);

  it('every option of the program and of push is stepped over (with or without its value) or left to the parser', () => {
    const unclassified: string[] = [];
    for (const [options, withValue] of [
      [program.options, PLAIN_PUSH_OPTIONS.globalWithValue],
      [push.options, PLAIN_PUSH_OPTIONS.pushWithValue],
    ] as const) {
      for (const option of options) {
        for (const flag of flagsOf(option)) {
          if (LEFT_TO_THE_PARSER.has(flag)) continue;
          const takesValue = option.required || option.optional;
          if (!(takesValue ? withValue.has(flag) : PLAIN_PUSH_OPTIONS.flags.has(flag))) unclassified.push(flag);
        }
      }
    }
    expect(push.options.length).toBeGreaterThan(5);
    expect(unclassified).toEqual([]);
  });

  it('every option in the tables is one push or the program accepts', () => {
    const accepted = new Set([...program.options, ...push.options].flatMap(flagsOf));
    const tables = [...PLAIN_PUSH_OPTIONS.globalWithValue, ...PLAIN_PUSH_OPTIONS.pushWithValue, ...PLAIN_PUSH_OPTIONS.flags];
    expect(tables.filter((flag) => !accepted.has(flag))).toEqual([]);
  });
});

describe('a bare push (no option at all) runs without the parser, with what the parser would give', () => {
  it('push CACHE PATH...: the cache, the paths as given and the flags commander hands push', async () => {
    const io: CliIo = { env: {}, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
    const program = buildProgram(io, () => {});
    const push = program.commands.find((command) => command.name() === 'push')!;
    let seen: unknown;
    push.action((...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      seen = { args: args.slice(0, -1), globals: command.optsWithGlobals() };
    });
    const argv = ['push', 'mycache', A, `${B}/`];
    expect(isBarePush(argv)).toBe(true);
    await program.parseAsync(argv, { from: 'user' });
    expect(seen).toEqual({ args: ['mycache', [A, `${B}/`], { ...BARE_PUSH_FLAGS }], globals: { ...BARE_PUSH_FLAGS } });
  });

  it('any option, no path, or another command: the parser', () => {
    for (const argv of [
      ['push', 'mycache', A, '-j', '4'],
      ['push', 'mycache', A, '--no-closure'],
      ['-v', 'push', 'mycache', A],
      ['push', 'mycache', '--', A],
      ['push', 'mycache'],
      ['verify', 'mycache', A],
    ]) {
      expect(isBarePush(argv), argv.join(' ')).toBe(false);
    }
  });
});
