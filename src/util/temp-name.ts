import { randomBytes } from 'node:crypto';
import { writerTag } from './writer-identity.js';

// Drawn once: a push of ten thousand small paths names twenty thousand temporary files, and a
// counter costs nothing where fresh random bytes cost a few microseconds each.
const processNonce = randomBytes(4).toString('hex');
let counter = 0;

/**
 * `.tmp-<pid>-<writer tag>-<nonce><n>`: unique among processes (pid, and a nonce in case a pid is
 * reused while an old file is still around) and within one. The spool sweep reads the pid and the
 * writer tag (machine, boot, PID namespace) to tell a dead local writer's file from one that a
 * process elsewhere, whose pid means nothing here, may still be writing.
 */
export function temporaryName(): string {
  counter++;
  return `.tmp-${process.pid}-${writerTag()}-${processNonce}${counter.toString(36)}`;
}
