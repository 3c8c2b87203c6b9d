import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UserError } from '../errors.js';

const execFileAsync = promisify(execFile);

/** The settings doctor reads from the Nix this user runs, after every nix.conf and NIX_CONFIG. */
export interface NixSettings {
  substituters: string[];
  trustedSubstituters: string[];
  trustedPublicKeys: string[];
  netrcFile: string;
  postBuildHook: string;
}

function list(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : [];
}

/** `nix show-config --json` (2.8) and `nix config show --json` (newer) both map a name to {value}. */
export function parseNixSettings(json: string): NixSettings {
  const settings = JSON.parse(json) as Record<string, { value?: unknown } | undefined>;
  const value = (name: string): unknown => settings[name]?.value;
  return {
    substituters: [...list(value('substituters')), ...list(value('extra-substituters'))],
    trustedSubstituters: list(value('trusted-substituters')),
    trustedPublicKeys: [...list(value('trusted-public-keys')), ...list(value('extra-trusted-public-keys'))],
    netrcFile: String(value('netrc-file') ?? ''),
    postBuildHook: String(value('post-build-hook') ?? ''),
  };
}

/** Asks Nix itself: only it knows what its includes, NIX_CONFIG and defaults add up to. */
export async function readNixSettings(env: NodeJS.ProcessEnv): Promise<NixSettings> {
  const features = ['--extra-experimental-features', 'nix-command'];
  for (const command of [['show-config'], ['config', 'show']]) {
    try {
      const { stdout } = await execFileAsync('nix', [...features, ...command, '--json'], { env, encoding: 'utf8', maxBuffer: 16 << 20 });
      return parseNixSettings(stdout);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new UserError('nix is not on PATH, so doctor cannot see what Nix will use', 'install Nix, or put its bin directory on PATH');
      }
    }
  }
  throw new UserError(
    '`nix show-config --json` failed, so doctor cannot see what Nix will use',
    'run it yourself to see why (a nix.conf error?)',
  );
}
