import { describe, expect, it } from 'vitest';
import { cachixRun } from '../helpers/cli.js';

describe('--help', () => {
  it('lists every kind of cache, attic included, where cache kinds are listed', async () => {
    const top = await cachixRun(['--help']);
    expect(top.code).toBe(0);
    const description = top.stdout.replace(/\s+/g, ' ');
    for (const kind of ['file://', 'http(s)://', 's3://', 'attic+https://', 'cachix.org API']) expect(description).toContain(kind);
    const create = await cachixRun(['create', '--help']);
    expect(create.code).toBe(0);
    const url = /--url <url>\s+([^\n]+(?:\n\s{10,}[^\n]+)*)/.exec(create.stdout)?.[1]?.replace(/\s+/g, ' ') ?? '';
    for (const kind of ['file://', 'http(s)://', 's3://', 'attic+https://', 'cachix:NAME']) expect(url).toContain(kind);
  });
});
