import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../src/util/quantities.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['45s', 45_000],
    ['90m', 5_400_000],
    ['12h', 43_200_000],
    ['30d', 2_592_000_000],
    ['2w', 1_209_600_000],
    ['1d12h', 129_600_000],
    ['1.5h', 5_400_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '10', '-1d', '1y', 'd', '1 d', 'soon'])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('parseSize', () => {
  it.each([
    ['0', 0],
    ['1234', 1234],
    ['10K', 10240],
    ['500M', 500 * 1024 ** 2],
    ['2.5GiB', 2.5 * 1024 ** 3],
    ['800MB', 800_000_000],
    ['1t', 1024 ** 4],
  ])('%s', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['', 'ten', '-5M', '5X', '1e9', 'M'])('refuses %j', (text) => expect(parseSize(text)).toBeUndefined());
});
