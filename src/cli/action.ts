import type { Context } from '../context.js';

/** Imports a command's module when it runs, so `cachix --help` loads commander and nothing heavy. */
export type Loader = () => Promise<{ run: (context: Context, ...args: never[]) => Promise<number | void> }>;

/** Turns a command's loader into the commander action that builds its context and runs it. */
export type ActionOf = (load: Loader) => (...args: unknown[]) => Promise<void>;
