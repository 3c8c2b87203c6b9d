import { createRequire } from 'node:module';
import type * as Commander from 'commander';

// commander is CommonJS. Required, it loads in about half the time an ESM import of it takes (no
// scan of its exports), and every command, `--help` included, waits for it.
const commander = createRequire(import.meta.url)('commander') as typeof Commander;

export const { Argument, Command, CommanderError, InvalidArgumentError, Option } = commander;
export type Command = Commander.Command;
