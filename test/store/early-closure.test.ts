import { beforeAll, describe, expect, it } from 'vitest';
import { startClosureEarly, takeEarlyClosure } from '../../src/store/early-closure.js';
import { buildTestClosure, nixClosure, requireNix } from '../helpers/nix.js';

describe('the closure query started before the command line is parsed', () => {
  let top: string;
  let lib: string;

  beforeAll(async () => {
    requireNix();
    ({ top, lib } = await buildTestClosure('early-closure'));
  });

  it('is taken by the push that asks for the same paths: the closure Nix lists, once', async () => {
    startClosureEarly([top]);
    expect(takeEarlyClosure([lib], new AbortController().signal), 'other paths').toBeUndefined();
    expect(takeEarlyClosure([top, lib], new AbortController().signal), 'more paths').toBeUndefined();
    const taken = takeEarlyClosure([top], new AbortController().signal);
    expect(taken).toBeDefined();
    expect((await taken!).paths.sort()).toEqual((await nixClosure(top)).sort());
    expect(takeEarlyClosure([top], new AbortController().signal), 'taken twice').toBeUndefined();
  });

  it("stops with the push's own query: a stopped push leaves no Nix query running", async () => {
    startClosureEarly([top]);
    const stop = new AbortController();
    const taken = takeEarlyClosure([top], stop.signal)!;
    stop.abort();
    await expect(taken).rejects.toThrow(/abort/i);
  });

  it('an invalid path fails with the validity check, as the parsed push would', async () => {
    const invalid = '/nix/store/00000000000000000000000000000000-early-closure-missing';
    startClosureEarly([invalid]);
    await expect(takeEarlyClosure([invalid], new AbortController().signal)!).rejects.toThrow(/is not a valid path in the Nix store/);
  });
});
