// zstd-napi, loaded the first time something is compressed: a push that finds everything already
// in the cache compresses nothing, and loading the native module and its wrappers is a visible
// part of such a push's start-up.
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';

const require = createRequire(import.meta.url);

/** The low-level API (binding.d.ts): streaming into a buffer we own and reuse. */
export function zstdBinding(): typeof ZstdBinding {
  return require('zstd-napi/binding.js') as typeof ZstdBinding;
}
