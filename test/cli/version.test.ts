import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CACHIX_COMPATIBLE_VERSION, OWN_VERSION } from '../../src/cli/version.js';
import { cachix } from '../helpers/cli.js';

// cachix-action (github cachix/cachix-action, src/main.ts, setup()) reads the version of the
// `cachix` on PATH and uses the daemon only from 1.7.0 on:
//
//   let cachixVersion = await execToVariable(cachixBin, ["--version"]).then(
//     (res) => semver.coerce(res.split(" ")[1]),
//   );
//   ...
//   let supportsDaemonInterface = cachixVersion ? semver.gte(cachixVersion, "1.7.0") : false;
//
// semver.coerce and semver.gte below are node-semver 7's (functions/coerce.js with the COERCE
// token of internal/re.js, MAX_SAFE_COMPONENT_LENGTH 16; functions/gte.js for release versions),
// copied because semver is not one of our dependencies.
const semver = {
  coerce(version: string | undefined): string | null {
    if (typeof version !== 'string') return null;
    const match = version.match(/(^|[^\d])(\d{1,16})(?:\.(\d{1,16}))?(?:\.(\d{1,16}))?(?:$|[^\d])/);
    if (match === null) return null;
    return `${Number(match[2])}.${Number(match[3] || '0')}.${Number(match[4] || '0')}`;
  },
  gte(left: string, right: string): boolean {
    const [a, b] = [left, right].map((version) => version.split('.').map(Number));
    for (let index = 0; index < 3; index++) if (a![index] !== b![index]) return a![index]! > b![index]!;
    return true;
  },
};

describe('cachix --version', () => {
  it("cachix-action's version check reads a cachix release at or above its daemon minimum (1.7.0)", async () => {
    const { code, stdout } = await cachix(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`cachix ${CACHIX_COMPATIBLE_VERSION} (any-cache edition ${OWN_VERSION})\n`);
    const cachixVersion = semver.coerce(stdout.split(' ')[1]);
    expect(cachixVersion).toBe(CACHIX_COMPATIBLE_VERSION);
    const supportsDaemonInterface = cachixVersion ? semver.gte(cachixVersion, '1.7.0') : false;
    expect(supportsDaemonInterface).toBe(true);
  });

  it('the copied semver check refuses what cachix-action refuses (a bare version, an old cachix)', () => {
    expect(semver.coerce('0.1.0\n'.split(' ')[1])).toBeNull();
    expect(semver.gte(semver.coerce('cachix 1.6.1'.split(' ')[1])!, '1.7.0')).toBe(false);
    expect(semver.gte(semver.coerce('cachix 1.10.0'.split(' ')[1])!, '1.7.0')).toBe(true);
  });

  it('names our own version as package.json does', () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(OWN_VERSION).toBe(pkg.version);
  });
});
