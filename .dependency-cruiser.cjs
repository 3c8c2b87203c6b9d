// The floors of the house (see README "Layout"), highest first. A module may import only from
// floors below its own; modules on one floor (push and maintain, netrc and util) do not import
// each other. Within a floor's own folder anything goes.
const floors = [
  ['main', '^src/(main|entry)\\.ts$'],
  ['cli', '^src/cli(\\.ts$|/)'],
  ['commands', '^src/commands/'],
  ['doctor', '^src/doctor/', 'copy', '^src/copy/'],
  ['push', '^src/push/', 'maintain', '^src/maintain/'],
  ['caches', '^src/caches/'],
  ['nixconf', '^src/nixconf/'],
  ['store', '^src/store/'],
  ['config', '^src/(config|config-paths|context|cachix-dhall|cachix-dhall-import)\\.ts$'],
  ['nix', '^src/nix/'],
  ['netrc', '^src/netrc\\.ts$', 'util', '^src/util/'],
  ['errors', '^src/(errors|redact)\\.ts$'],
];

const rooms = floors.map((floor) => {
  const pairs = [];
  for (let i = 0; i < floor.length; i += 2) pairs.push({ name: floor[i], path: floor[i + 1] });
  return pairs;
});

const forbidden = [];
rooms.forEach((floor, height) => {
  const aboveOrLevel = rooms.slice(0, height + 1).flat();
  for (const room of floor) {
    const others = aboveOrLevel.filter((other) => other.name !== room.name).map((other) => other.path);
    if (others.length === 0) continue;
    forbidden.push({
      name: `${room.name}-imports-down`,
      comment: `${room.name} may import only from the floors below it (README "Layout")`,
      severity: 'error',
      from: { path: room.path },
      to: { path: others },
    });
  }
});

// Inside push/: a NAR's journey (nar/) knows nothing of the pipeline that asks for it, watching
// (watch/) builds on the pipeline, and the daemon (daemon/) on watching; the pipeline at push/
// itself imports neither watching nor the daemon.
forbidden.push(
  {
    name: 'push-nar-imports-only-itself',
    comment: "push/nar/ is the NAR's journey (dump, check, compress, stage): it may not import the rest of push/",
    severity: 'error',
    from: { path: '^src/push/nar/' },
    to: { path: '^src/push/', pathNot: '^src/push/nar/' },
  },
  {
    name: 'push-watch-below-daemon',
    comment: "push/watch/ may use the pipeline, never the daemon or a NAR's internals",
    severity: 'error',
    from: { path: '^src/push/watch/' },
    to: { path: '^src/push/(daemon|nar)/' },
  },
  {
    name: 'push-pipeline-below-watch',
    comment: 'the pipeline at push/ is what watching and the daemon build on: it may not import them',
    severity: 'error',
    from: { path: '^src/push/[^/]+\\.ts$' },
    to: { path: '^src/push/(watch|daemon)/' },
  },
);

forbidden.push(
  {
    name: 'every-module-on-a-floor',
    comment: 'a module in src/ outside every floor escapes the rule: put it on one (and in README "Layout")',
    severity: 'error',
    from: { path: '^src/', pathNot: rooms.flat().map((room) => room.path) },
    to: {},
  },
  {
    name: 'push-daemon-on-top',
    comment: 'push/daemon/ (the daemon, its socket and inbox) builds on the push pipeline; the pipeline never needs the daemon',
    severity: 'error',
    from: { path: '^src/push/', pathNot: '^src/push/daemon/' },
    to: { path: '^src/push/daemon/' },
  },
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'a cycle makes two modules one; split the shared part out',
    from: {},
    to: { circular: true },
  },
  {
    name: 'product-does-not-import-tests',
    severity: 'error',
    from: { path: '^src/' },
    to: { path: '^(test|bench)/' },
  },
  {
    name: 'nix-is-pure',
    comment: 'nix/ holds pure formats: no processes, no network, no file system',
    severity: 'error',
    from: { path: '^src/nix/' },
    to: { path: '^(child_process|net|http|https|fs|fs/promises|worker_threads)$', dependencyTypes: ['core'] },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
