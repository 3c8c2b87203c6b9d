import { randomBytes } from 'node:crypto';

// Drawn once: a push of ten thousand small paths names twenty thousand temporary files, and a
// counter costs nothing where fresh random bytes cost a few microseconds each.
const processNonce = randomBytes(4).toString('hex');
let counter = 0;

/**
 * `.tmp-<pid>-<nonce><n>`: unique among processes (pid, and a nonce in case a pid is reused
 * while an old file is still around) and within one. The `.tmp-<pid>-` prefix is what the spool
 * sweep reads to tell a live writer's file from one a killed push left behind.
 */
export function temporaryName(): string {
  counter++;
  return `.tmp-${process.pid}-${processNonce}${counter.toString(36)}`;
}
