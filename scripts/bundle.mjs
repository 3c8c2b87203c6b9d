// Bundles what tsc built (dist/) into dist/bundle/: what a command loads at once in few files,
// what it loads on demand (a command, the S3 cache, the push pipeline) in chunks still loaded only
// on demand. Node's ESM loader resolves, reads and links every module file on its own, and
// requiring a CommonJS package (commander, the TOML parser) looks up and reads each of its files:
// a start that loads ~70 files pays for that on every `cachix` run.
// Worker threads still start from their own files in dist/ (their URLs are rewritten to point
// there). Packages loaded only by some commands (the AWS SDK, undici, ora) and the native zstd
// binding stay in node_modules.
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const outdir = process.env.BUNDLE_OUTDIR ?? join(dist, 'bundle');
/** Bundled into the start path: CommonJS every command requires. */
const BUNDLED = new Set(['commander', '@iarna/toml']);

function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const rewrites = {
  name: 'dist-rewrites',
  setup(context) {
    // Packages: bundled when listed above, else loaded from node_modules at run time.
    context.onResolve({ filter: /^[^./]/ }, ({ path: specifier }) => {
      if (specifier.startsWith('node:') || !BUNDLED.has(packageOf(specifier))) return { path: specifier, external: true };
      return undefined;
    });
    context.onLoad({ filter: /\.js$/ }, async ({ path }) => {
      const text = await readFile(path, 'utf8');
      if (path.includes(`${join(root, 'node_modules')}`)) return { contents: text, loader: 'js' };
      let contents = text
        // `new URL('./x.js', import.meta.url)` means x.js beside the module's own file (a worker): keep it so.
        .replace(/new URL\((['"])(\.\.?\/[^'"]+)\1, import\.meta\.url\)/g, (_, _quote, target) => {
          const fromBundle = relative(outdir, resolve(dirname(path), target))
            .split('\\')
            .join('/');
          return `new URL(${JSON.stringify(fromBundle.startsWith('.') ? fromBundle : `./${fromBundle}`)}, import.meta.url)`;
        })
        // A CommonJS package required through createRequire: a plain require, which the bundler follows.
        .replace(/createRequire\(import\.meta\.url\)\(/g, 'require(');
      const alias = /^const (\w+) = createRequire\(import\.meta\.url\);$/m.exec(contents);
      if (alias) contents = contents.replace(alias[0], '').replace(new RegExp(`\\b${alias[1]}\\(`, 'g'), 'require(');
      return { contents, loader: 'js' };
    });
  },
};

await build({
  entryPoints: { main: join(dist, 'main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  // What stays a run-time require (the zstd binding) needs `require` in an ES module.
  banner: { js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
  plugins: [rewrites],
});
