import type { Context } from '../context.js';
import { formatFindings } from '../doctor/report.js';
import { runDoctor } from '../doctor/run-doctor.js';

export interface DoctorCommandOptions {
  cache?: string;
  json?: boolean;
  readOnly?: boolean;
}

/** `cachix doctor [STORE-PATH] [--cache NAME] [--json] [--read-only]`: exit 1 when a check fails. */
export async function run(context: Context, storePath: string | undefined, options: DoctorCommandOptions): Promise<number> {
  const results = await runDoctor(context, { cache: options.cache, storePath, readOnly: options.readOnly === true }, () => {});
  context.stdout.write(options.json ? JSON.stringify(results, null, 2) + '\n' : formatFindings(results));
  return results.some((result) => result.status === 'fail') ? 1 : 0;
}
