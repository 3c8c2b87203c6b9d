// A pid names a process only within one PID namespace on one boot of one machine. Spool files in
// a shared cache (NFS, a volume mounted into several containers) are written by processes whose
// pids mean nothing here, so each name also carries a short tag of where its writer's pid lives.
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

function readOr(read: () => string, fallback: string): string {
  try {
    return read().trim();
  } catch {
    return fallback;
  }
}

function computeWriterTag(): string {
  const bootId = readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'), 'no-boot-id');
  // The namespace of this process, even where /proc belongs to a parent namespace.
  const pidNamespace = readOr(() => readlinkSync('/proc/self/ns/pid'), 'no-pid-namespace');
  return createHash('sha256').update(`${hostname()}\n${bootId}\n${pidNamespace}`).digest('hex').slice(0, 8);
}

let cached: string | undefined;

/** Eight hex digits naming this machine, boot and PID namespace together. */
export function writerTag(): string {
  cached ??= computeWriterTag();
  return cached;
}
