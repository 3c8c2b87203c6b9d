import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildManySmall } from './input.js';
import { measure } from './measure.js';
import { seconds } from './report.js';
import {
  GOALS,
  LEVEL,
  NIX_FEATURES,
  ROOT,
  SMALL_PATHS,
  SMALL_TIMEOUT_MS,
  cachixOk,
  check,
  log,
  step,
  targets,
  timings,
  workDir,
} from './harness.js';

interface Nginx {
  url: string;
  root: string;
  stop(): Promise<void>;
}

/** The test suite's WebDAV nginx, when that helper exists. */
async function startNginx(): Promise<Nginx> {
  const helper = join(ROOT, 'test', 'helpers', 'nginx.ts');
  if (!existsSync(helper)) throw new Error(`${helper} does not exist yet`);
  const module = (await import(pathToFileURL(helper).href)) as { startNginx: () => Promise<Nginx> };
  return module.startNginx();
}

function noopGoal(goalMs: number): string {
  return `< ${seconds(goalMs)}${SMALL_PATHS === 10_000 ? '' : ' (the goal for 10,000)'}`;
}

async function noopPush(cache: string, top: string, label: string, goalMs: number): Promise<void> {
  const first = await step(`${label}: first push of ${SMALL_PATHS + 1} paths`, async () => {
    const result = await cachixOk(['push', cache, top, '-m', 'zstd', '-l', String(LEVEL)], SMALL_TIMEOUT_MS);
    timings.push({
      name: `${label}: first push of ${SMALL_PATHS + 1} small paths`,
      wallMs: result.wallMs,
      peakRssBytes: result.peakRssBytes,
    });
    return result;
  });
  const again = first && (await step(`${label}: no-op re-push`, () => cachixOk(['push', cache, top], SMALL_TIMEOUT_MS)));
  if (again) timings.push({ name: `${label}: no-op re-push (all present)`, wallMs: again.wallMs, peakRssBytes: again.peakRssBytes });
  targets.push({
    name: `no-op re-push of ${SMALL_PATHS + 1} paths, ${label}`,
    measured: again ? seconds(again.wallMs) : '—',
    goal: noopGoal(goalMs),
    pass: again ? again.wallMs < goalMs : undefined,
  });
}

export async function manySmallPaths(): Promise<void> {
  const many = await step(`build ${SMALL_PATHS} small paths and one referring to all (once per machine)`, () =>
    buildManySmall(SMALL_PATHS, 3600_000),
  );
  if (many) log(`   ${many.top}: closure of ${many.closure.length} paths, built in ${seconds(many.buildMs)}`);
  if (many && (await step('create the file cache bench-many', () => cachixOk(['create', 'bench-many'], 60_000)))) {
    await noopPush('bench-many', many.top, 'file cache', GOALS.noopFileMs);
  } else {
    targets.push({
      name: `no-op re-push of ${SMALL_PATHS + 1} paths, file cache`,
      measured: '—',
      goal: noopGoal(GOALS.noopFileMs),
      pass: undefined,
    });
  }
  if (many) {
    await step('peer: nix copy no-op re-copy to a file cache', async () => {
      const dir = join(workDir(), 'nix-copy-many');
      const url = `file://${dir}?compression=zstd&compression-level=${LEVEL}`;
      const first = check(
        'nix copy',
        await measure('nix', [...NIX_FEATURES, 'copy', '--to', url, many.top], { timeoutMs: SMALL_TIMEOUT_MS }),
      );
      timings.push({
        name: `peer: nix copy of ${SMALL_PATHS + 1} small paths, file cache`,
        wallMs: first.wallMs,
        peakRssBytes: first.peakRssBytes,
        note: 'for reference',
      });
      const again = check(
        'nix copy',
        await measure('nix', [...NIX_FEATURES, 'copy', '--to', url, many.top], { timeoutMs: SMALL_TIMEOUT_MS }),
      );
      timings.push({
        name: 'peer: nix copy no-op re-copy, file cache',
        wallMs: again.wallMs,
        peakRssBytes: again.peakRssBytes,
        note: 'for reference',
      });
      await rm(dir, { recursive: true, force: true });
    });
  }
  let nginx: Nginx | undefined;
  try {
    nginx = many ? await step('start nginx (WebDAV)', startNginx) : undefined;
    if (
      many &&
      nginx &&
      (await step('create the HTTP cache bench-http', () => cachixOk(['create', 'bench-http', '--url', nginx!.url], 60_000)))
    ) {
      await noopPush('bench-http', many.top, 'nginx cache', GOALS.noopHttpMs);
    } else {
      targets.push({
        name: `no-op re-push of ${SMALL_PATHS + 1} paths, nginx cache`,
        measured: '—',
        goal: noopGoal(GOALS.noopHttpMs),
        pass: undefined,
      });
    }
  } finally {
    if (nginx) await step('stop nginx', () => nginx!.stop());
  }
}
