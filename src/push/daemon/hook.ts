// Nix's post-build-hook, handing each build to the push daemon through its inbox folder. Nix runs
// the hook synchronously after every build (the next build waits for it), so the generated hook
// is plain sh that writes one small file and returns: no Node start-up (0.2 s here) per build.
// A file in the inbox also outlives the daemon: what a killed daemon had not pushed is still
// there for the next one.
import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { checkOwnedFolder, makeFolder } from './owned-folder.js';

/** The last line of a complete job file. */
export const JOB_END = 'end';

export function inboxFor(socketPath: string): string {
  return `${socketPath}.inbox`;
}

export function hookScriptPathFor(socketPath: string): string {
  return `${socketPath}.post-build-hook`;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The hook: a job file per build, made with shell builtins only (no mktemp, no mv: each fork
 * costs a build about 10 ms here). `set -C` creates the file exclusively, so two hooks never
 * share one; the last line `end` tells the daemon the file is complete. Nix 2.8 leaves OUT_PATHS
 * empty and sets DRV_PATH; newer Nix sets both. It never fails the build: a hook that exits
 * non-zero would fail it.
 */
export function hookScript(inboxDir: string): string {
  return `#!/bin/sh
# cachix post-build-hook: hands this build's outputs to the cachix daemon and returns at once.
inbox=${shellQuote(inboxDir)}
if [ -z "$DRV_PATH" ] && [ -z "$OUT_PATHS" ]; then
  echo "cachix post-build-hook: neither DRV_PATH nor OUT_PATHS is set (not run by Nix?); nothing handed to the daemon" >&2
  exit 0
fi
set -C
n=0
until {
  [ -n "$DRV_PATH" ] && printf 'drv %s\\n' "$DRV_PATH"
  for path in $OUT_PATHS; do printf 'out %s\\n' "$path"; done
  printf 'end\\n'
} 2>/dev/null > "$inbox/job.$$.$n"; do
  n=$((n + 1))
  if [ $n -ge 100 ]; then
    echo "cachix post-build-hook: cannot write to $inbox; is the daemon's folder there?" >&2
    exit 0
  fi
done
exit 0
`;
}

export async function writeHookScript(scriptPath: string, inboxDir: string): Promise<void> {
  const temporary = `${scriptPath}.tmp-${process.pid}`;
  await writeFile(temporary, hookScript(inboxDir), { mode: 0o700 });
  await chmod(temporary, 0o700);
  await rename(temporary, scriptPath);
}

/** The inbox: 0700 and ours, or refused (anyone who can write it queues paths for us to sign). */
export async function prepareInbox(inboxDir: string): Promise<void> {
  await makeFolder(inboxDir, { recursive: false, mode: 0o700 });
  await checkOwnedFolder(inboxDir, "the daemon's inbox");
}

/** The same job from Node (`cachix daemon post-build-hook`), for a hook that runs cachix itself. */
export async function writeHookJob(inboxDir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const outPaths = (env.OUT_PATHS ?? '').split(/\s+/).filter(Boolean);
  const drvPath = env.DRV_PATH?.trim();
  if (!drvPath && outPaths.length === 0) {
    throw new UserError(
      'neither DRV_PATH nor OUT_PATHS is set: nothing to hand to the daemon',
      'Nix sets them when it runs a post-build-hook',
    );
  }
  const lines = [...(drvPath ? [`drv ${drvPath}`] : []), ...outPaths.map((path) => `out ${path}`), JOB_END];
  const name = `${Date.now()}-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const temporary = join(inboxDir, `.new.${name}`);
  await writeFile(temporary, `${lines.join('\n')}\n`);
  await rename(temporary, join(inboxDir, `job.${name}`));
}
