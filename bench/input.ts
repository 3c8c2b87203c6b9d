import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './measure.js';

/**
 * The benchmark inputs, built with real Nix. Every derivation carries a fixed salt (bumped by hand
 * when the recipe changes) and its builder script inline, so the derivation, and therefore its
 * output path, is the same on every run: Nix builds the input once per machine and afterwards
 * nix-build returns at once. An out-link in ~/.cache/cachix-bench keeps it safe from the GC.
 */
const RECIPE = 'cachix-bench-v1';

/** Where the GC roots and the generated expressions live between runs. */
export function benchCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cachix-bench');
}

/**
 * A Nix file `{ salt }: [ COUNT derivations named PREFIX-i ]`, each running `script` (a shell line
 * that may use `${toString i}` and `${salt}`), written to `file`. Built with `--argstr salt
 * (freshSalt())`, every build makes paths no store has yet.
 */
export async function writeSaltedDerivations(file: string, namePrefix: string, script: string, count: number): Promise<void> {
  await writeFile(
    file,
    `{ salt }: builtins.genList (i: derivation { name = "${namePrefix}-\${toString i}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "${script}; :" ]; inherit salt; }) ${count}`,
  );
}

/** A salt no earlier build used. */
export function freshSalt(): string {
  return `${process.pid}-${Date.now()}-${Math.random()}`;
}

export interface BigInput {
  top: string;
  closure: string[];
  narBytes: number;
  buildMs: number;
}

export interface ManySmallInput {
  top: string;
  closure: string[];
  buildMs: number;
}

// Builders get PATH=/bin:/usr/bin and no network; perl is in every Debian base system.
function derivationExpression(): string {
  return `
  mk = name: script: extra: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" ("export PATH=/bin:/usr/bin; set -eu\\n" + script + "\\n:") ]; # a trailing builtin: see KEEP_BUILDER_LOG_OPEN in test/helpers/nix.ts
    salt = "${RECIPE}";
  } // extra);`;
}

/**
 * Text like /usr/share: words from a Zipf-skewed vocabulary, lines of varied length, files of
 * varied size (mean about 8 KB, most small, a few up to 32 KB) in a nested tree.
 */
const SHARE_SCRIPT = (files: number, seed: number): string => `
perl -e '
use strict; my ($out, $files, $seed) = @ARGV; srand($seed);
my @syl = qw(ka lo mi ne ro su ta vi ze ba de fo gu hi ju pe qu ra so tu wa xe yo zi an el in on un);
my @vocab; for my $i (0..4999) { my $w = ""; $w .= $syl[int(rand(@syl))] for 1..(1+int(rand(4))); push @vocab, $w; }
for my $i (0..$files-1) {
  my $dir = sprintf("%s/share/doc/d%02d/s%03d", $out, $i % 37, int($i / 37) % 211);
  system("mkdir", "-p", $dir) unless -d $dir;
  my $size = int(120 + (rand() ** 3) * 32000);
  my $text = ""; my $line = 0;
  while (length($text) < $size) {
    $text .= $vocab[int((rand() ** 2.5) * @vocab)];
    if (++$line >= 6 + ($i % 9)) { $text .= "\\n"; $line = 0 } else { $text .= " " }
  }
  open(my $fh, ">", "$dir/f$i.txt") or die; print $fh substr($text, 0, $size); close($fh);
}' "$out" ${files} ${seed}
`;

/** A service log: timestamps, levels, paths, ids; compresses like real logs (about 5-8x with zstd -3). */
const LOG_SCRIPT = (bytes: number): string => `
mkdir -p $out/var/log
perl -e '
use strict; my ($file, $bytes) = @ARGV; srand(42);
my @lvl = ("INFO ", "INFO ", "INFO ", "DEBUG", "WARN ", "ERROR");
my @path = ("/api/v1/items", "/api/v1/users", "/healthz", "/api/v2/search", "/static/app.js", "/api/v1/orders");
my @st = (200, 200, 200, 200, 201, 204, 304, 404, 500);
open(my $fh, ">", $file) or die; my $n = 0; my $t = 1700000000000;
while ($n < $bytes) {
  $t += int(rand(40));
  my $line = sprintf("%d.%03d %s [worker-%d] %s %s/%d status=%d bytes=%d duration_ms=%d trace=%08x%08x\\n",
    int($t / 1000), $t % 1000, $lvl[int(rand(@lvl))], int(rand(16)), (rand() < 0.8 ? "GET" : "POST"),
    $path[int(rand(@path))], int(rand(100000)), $st[int(rand(@st))], int(rand(65536)), int(rand(250)),
    int(rand(2**32)), int(rand(2**32)));
  print $fh $line; $n += length($line);
}
close($fh); truncate($file, $bytes);' $out/var/log/service.log ${bytes}
`;

/** Bytes no compressor can shrink, from a fixed key, so the same on every run. */
const RANDOM_SCRIPT = (bytes: number): string => `
mkdir -p $out/share/data
head -c ${bytes} /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 > $out/share/data/blob.bin
`;

/** Real shared libraries from this machine, in sorted order, up to a byte budget. */
const LIBS_SCRIPT = (budget: number): string => `
mkdir -p $out/lib
total=0
for f in $(find /usr/lib/x86_64-linux-gnu -maxdepth 2 -type f -name '*.so*' | LC_ALL=C sort); do
  size=$(stat -c %s "$f")
  [ $((total + size)) -le ${budget} ] || continue
  rel=\${f#/usr/lib/x86_64-linux-gnu/}
  mkdir -p "$out/lib/$(dirname "$rel")"
  cp "$f" "$out/lib/$rel"
  total=$((total + size))
done
echo "copied $total bytes of libraries"
`;

const TOP_SCRIPT = `
mkdir -p $out/bin
for name in $(env | sed -n 's/^\\(part[0-9]*\\)=.*/\\1/p' | sort); do echo "\${!name}"; done > $out/parts
printf '#!/bin/sh\\ncat %s/parts\\n' "$out" > $out/bin/show-parts
chmod +x $out/bin/show-parts
`;

function nixString(text: string): string {
  // Nix's '' strings keep $ and " literal; only '' and ${ need escaping.
  return "''" + text.replaceAll("''", "'''").replaceAll('${', "''${") + "''";
}

/** What the big closure holds at a scale: about 1 GB of NAR at scale 1. */
export function bigInputSizes(scale: number): { files: number; libsBytes: number; logBytes: number; randomBytes: number } {
  return {
    files: Math.max(200, Math.round(30_000 * scale)),
    libsBytes: Math.round(150e6 * scale),
    logBytes: Math.round(350e6 * scale),
    randomBytes: Math.round(200e6 * scale),
  };
}

export function bigInputExpression(scale: number): string {
  const { files, libsBytes, logBytes, randomBytes } = bigInputSizes(scale);
  const shareParts = 8;
  const parts: string[] = [];
  const lines: string[] = [];
  for (let index = 0; index < shareParts; index++) {
    const count = Math.floor(files / shareParts) + (index < files % shareParts ? 1 : 0);
    lines.push(`  share${index} = mk "bench-share-${index}" ${nixString(SHARE_SCRIPT(count, 1000 + index))} {};`);
    parts.push(`share${index}`);
  }
  lines.push(`  libs = mk "bench-libs" ${nixString(LIBS_SCRIPT(libsBytes))} {};`);
  lines.push(`  log = mk "bench-log" ${nixString(LOG_SCRIPT(logBytes))} {};`);
  lines.push(`  blob = mk "bench-random" ${nixString(RANDOM_SCRIPT(randomBytes))} {};`);
  parts.push('libs', 'log', 'blob');
  const refs = parts.map((part, index) => `part${index} = ${part};`).join(' ');
  return `let\n${derivationExpression()}\n${lines.join('\n')}\nin mk "bench-closure-scale-${scale}" ${nixString(TOP_SCRIPT)} { ${refs} }\n`;
}

/**
 * 10,000 separate tiny store paths and one derivation referring to all of them. The small paths are
 * builtins.toFile text files: Nix writes them while evaluating, which takes seconds, where 10,000
 * derivations would mean 10,000 builds.
 */
export function manySmallExpression(count: number): string {
  return `let\n${derivationExpression()}
  small = builtins.genList (i: builtins.toFile "bench-small-\${toString i}" "${RECIPE} small path \${toString i}\\n") ${count};
# passAsFile: 10,000 paths are more than one environment variable may hold (128 KiB).
in mk "bench-many-${count}" ''
  mkdir -p $out; tr ' ' '\\n' < "$smallPathsPath" > $out/paths
'' { smallPaths = small; passAsFile = [ "smallPaths" ]; }\n`;
}

async function nixBuild(name: string, expression: string, timeoutMs: number): Promise<{ top: string; buildMs: number }> {
  const dir = benchCacheDir();
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.nix`);
  await writeFile(file, expression);
  const started = performance.now();
  // No substituters: the inputs exist nowhere else, and without network Nix would retry for seconds.
  const args = [file, '--out-link', join(dir, `${name}-result`), '--max-jobs', '2', '--quiet', '--option', 'substituters', ''];
  let result = await runCommand('nix-build', args, { timeoutMs });
  // One retry: on a shared machine a builder can be killed from outside; what was built stays built.
  if (result.code !== 0 && !result.timedOut) result = await runCommand('nix-build', args, { timeoutMs });
  if (result.code !== 0)
    throw new Error(`nix-build ${file} failed (${result.timedOut ? 'timed out' : `exit ${result.code}`}): ${result.stderr.slice(-2000)}`);
  return { top: result.stdout.trim().split('\n').pop()!, buildMs: performance.now() - started };
}

export async function closureOf(path: string): Promise<string[]> {
  const result = await runCommand('nix-store', ['-qR', path], { timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`nix-store -qR ${path}: ${result.stderr}`);
  return result.stdout.trim().split('\n').filter(Boolean);
}

export async function closureNarSize(path: string): Promise<number> {
  const result = await runCommand('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '-S', path], { timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`nix path-info -S ${path}: ${result.stderr}`);
  const size = Number(result.stdout.trim().split(/\s+/).pop());
  if (!Number.isFinite(size)) throw new Error(`nix path-info -S printed ${JSON.stringify(result.stdout)}`);
  return size;
}

export async function buildBigInput(scale: number, timeoutMs: number): Promise<BigInput> {
  const { top, buildMs } = await nixBuild(`big-scale-${scale}`, bigInputExpression(scale), timeoutMs);
  return { top, buildMs, closure: await closureOf(top), narBytes: await closureNarSize(top) };
}

export async function buildManySmall(count: number, timeoutMs: number): Promise<ManySmallInput> {
  const { top, buildMs } = await nixBuild(`many-${count}`, manySmallExpression(count), timeoutMs);
  return { top, buildMs, closure: await closureOf(top) };
}

/** One path of `files` small files (a node_modules, a site-packages, kernel headers): about 200 bytes each, in nested folders. */
const MANY_FILES_SCRIPT = (files: number): string => `
perl -e '
use strict; my ($out, $files) = @ARGV; srand(7);
my @words = qw(module exports require function return const let var if else for while import from default class new this);
for my $i (0..$files-1) {
  my $dir = sprintf("%s/lib/node_modules/p%03d/src/d%02d", $out, $i % 997, int($i / 997) % 53);
  system("mkdir", "-p", $dir) unless -d $dir;
  my $text = ""; $text .= $words[int(rand(@words))] . (rand() < 0.15 ? "\\n" : " ") while length($text) < 120 + int(rand(160));
  open(my $fh, ">", "$dir/f$i.js") or die; print $fh $text; close($fh);
}' "$out" ${files}
`;

export async function buildManyFiles(files: number, timeoutMs: number): Promise<{ path: string; buildMs: number }> {
  const expression = `let\n${derivationExpression()}\nin mk "bench-many-files-${files}" ${nixString(MANY_FILES_SCRIPT(files))} {}\n`;
  const { top, buildMs } = await nixBuild(`many-files-${files}`, expression, timeoutMs);
  return { path: top, buildMs };
}
