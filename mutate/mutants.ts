// The guarantees we promise users, each broken on purpose in one place, with the tests that must
// then fail. `find` must occur exactly once in `file` (the runner refuses a stale mutant).
// Keep `killedBy` narrow (a file and a test name): every entry is a vitest run with real servers.
// Grouped by guarantee: NarHash on push, signing and its formats, NAR before narinfo, verify,
// trust, keys never replaced, 0600 modes, redaction.

export interface Mutant {
  id: string;
  file: string;
  /** What a user would lose if this mutant shipped. */
  breaks: string;
  find: string;
  replace: string;
  /** Tried in order; the first failing run kills the mutant. */
  killedBy: { file: string; name?: string }[];
}

export const MUTANTS: Mutant[] = [
  {
    id: 'push-narhash-check',
    file: 'src/push/nar/check.ts',
    breaks: 'a store path changed after it was built (same size) is pushed as if it were intact',
    find: 'if (!hashesEqual(narHash, info.narHash)) {',
    replace: 'if (!hashesEqual(narHash, narHash)) {',
    killedBy: [
      {
        file: 'test/commands/push.test.ts',
        name: 'same-size tampered',
      },
    ],
  },
  {
    id: 'push-narsize-check',
    file: 'src/push/nar/check.ts',
    breaks: 'a store path whose NAR size differs from what Nix recorded is not named as such',
    find: 'if (narSize !== info.narSize) throw',
    replace: 'if (false) throw',
    killedBy: [
      {
        file: 'test/commands/push.test.ts',
        name: 'a corrupted store path is refused',
      },
    ],
  },
  {
    id: 'push-unsigned',
    file: 'src/push/narinfo-signature.ts',
    breaks: 'narinfos are pushed without our signature',
    find: 'return { ...unsigned, sigs: [ours, ...others] };',
    replace: 'return { ...unsigned, sigs: [ours, ...others].slice(1) };',
    killedBy: [
      {
        file: 'test/commands/push.test.ts',
        name: 'pushes the whole closure',
      },
    ],
  },
  {
    id: 'push-wrong-fingerprint',
    file: 'src/push/narinfo-signature.ts',
    breaks: 'the signature covers another fingerprint than the narinfo it is in',
    find: 'signFingerprint(key, narInfoFingerprint(unsigned))',
    replace: 'signFingerprint(key, narInfoFingerprint({ ...unsigned, references: [] }))',
    killedBy: [
      {
        file: 'test/commands/push.test.ts',
        name: 'pushes the whole closure',
      },
    ],
  },
  {
    id: 'fingerprint-unsorted-references',
    file: 'src/nix/narinfo.ts',
    breaks: 'the fingerprint lists references in narinfo order, not sorted as Nix signs them',
    find: "[...info.references].sort().join(',')",
    replace: "[...info.references].join(',')",
    killedBy: [
      {
        file: 'test/nix/narinfo.test.ts',
        name: 'fingerprint',
      },
    ],
  },
  {
    id: 'fingerprint-narsize',
    file: 'src/nix/narinfo.ts',
    breaks: 'the fingerprint leaves out NarSize',
    find: '${formatHashBase32(info.narHash)};${info.narSize};',
    replace: '${formatHashBase32(info.narHash)};;',
    killedBy: [
      {
        file: 'test/nix/narinfo.test.ts',
        name: 'fingerprint',
      },
    ],
  },
  {
    id: 'sign-other-message',
    file: 'src/nix/signing.ts',
    breaks: 'signatures are made over other bytes than the fingerprint',
    find: "nodeSign(null, Buffer.from(fingerprint, 'utf8'), nativePrivateKey(key))",
    replace: "nodeSign(null, Buffer.from(fingerprint + '\\n', 'utf8'), nativePrivateKey(key))",
    killedBy: [
      {
        file: 'test/nix/narinfo.test.ts',
        name: "signs a fingerprint with Nix's secret key",
      },
    ],
  },
  {
    id: 'verify-any-signature',
    file: 'src/nix/signing.ts',
    breaks: 'any well-formed signature from a key of the right name verifies',
    find: 'parsed.candidates.some((key) => nodeVerify(null, message, nativePublicKey(key), parsed.signature));',
    replace: 'parsed.candidates.some((key) => nodeVerify(null, message, nativePublicKey(key), parsed.signature) || true);',
    killedBy: [
      {
        file: 'test/nix/narinfo.test.ts',
        name: "verifies Nix's signatures",
      },
    ],
  },
  {
    id: 'verify-key-name',
    file: 'src/nix/signing.ts',
    breaks: 'a signature is checked against keys of any name',
    find: 'candidates: keys.filter((key) => key.name === name)',
    replace: 'candidates: keys.filter((key) => key.name === name || true)',
    killedBy: [
      {
        file: 'test/nix/narinfo.test.ts',
        name: "verifies Nix's signatures",
      },
    ],
  },
  {
    id: 'hashes-equal-always',
    file: 'src/nix/hash.ts',
    breaks: 'two different hashes compare equal',
    find: 'return a.algorithm === b.algorithm && Buffer.from(a.digest).equals(Buffer.from(b.digest));',
    replace: 'return a.algorithm === b.algorithm;',
    killedBy: [
      {
        file: 'test/nix/hash.test.ts',
        name: 'compares algorithm and digest',
      },
    ],
  },
  {
    id: 'nar-padding',
    file: 'src/nix/nar/wire.ts',
    breaks: 'NAR strings are padded wrongly (NARs no longer byte-identical to nix-store --dump)',
    find: 'return (8 - (length % 8)) % 8;',
    replace: 'return 8 - (length % 8);',
    killedBy: [
      {
        file: 'test/store/nar-dump.test.ts',
      },
    ],
  },
  {
    id: 'base32-bit-order',
    file: 'src/nix/base32.ts',
    breaks: "hashes are printed in RFC 4648 bit order, not Nix's",
    find: 'for (let n = length - 1; n >= 0; n--) {',
    replace: 'for (let n = 0; n < length; n++) {',
    killedBy: [
      {
        file: 'test/nix/base32.test.ts',
      },
    ],
  },
  {
    id: 'file-narinfo-first',
    file: 'src/caches/file.ts',
    breaks: 'the file cache writes the narinfo before its NAR',
    find: '      if (dirname(nar.localPath) === dirname(narPath)) {',
    replace:
      '      writeFileAtomicallySync(join(this.root, `${hashPartOf(narInfo.storePath)}.narinfo`), formatNarInfo(narInfo));\n      if (dirname(nar.localPath) === dirname(narPath)) {',
    killedBy: [
      {
        file: 'test/caches/file.test.ts',
        name: 'the NAR is stored before its narinfo',
      },
    ],
  },
  {
    id: 'file-narinfo-in-place',
    file: 'src/util/atomic-write.ts',
    breaks: 'a narinfo is written in place, so a crash can leave half of one',
    find: '    writeFileSync(temporary, data);\n    renameSync(temporary, path);',
    replace: '    writeFileSync(path, data);\n    renameSync(path, path);',
    killedBy: [
      {
        file: 'test/caches/file.test.ts',
        name: 'disk that fills up',
      },
    ],
  },
  {
    id: 'file-copy-litter',
    file: 'src/caches/file.ts',
    breaks: 'a NAR copy that fails leaves its temporary file in the cache',
    find: '          await unlink(temporary).catch(() => undefined);\n',
    replace: '          void unlink;\n',
    killedBy: [
      {
        file: 'test/caches/file.test.ts',
        name: 'the NAR is stored before its narinfo',
      },
    ],
  },
  {
    id: 'http-narinfo-first',
    file: 'src/caches/http.ts',
    breaks: 'the HTTP cache PUTs the narinfo before its NAR',
    find: "    await this.put(nar.narUrl, 'application/x-nix-nar', () => nar.open(), nar.fileSize);\n    // Only now, with every byte of the NAR stored, may Nix learn that the path exists.\n    await this.put(`${hashPartOf(narInfo.storePath)}.narinfo`, 'text/x-nix-narinfo', () => formatNarInfo(narInfo));",
    replace:
      "    await this.put(`${hashPartOf(narInfo.storePath)}.narinfo`, 'text/x-nix-narinfo', () => formatNarInfo(narInfo));\n    await this.put(nar.narUrl, 'application/x-nix-nar', () => nar.open(), nar.fileSize);",
    killedBy: [
      {
        file: 'test/caches/http.test.ts',
        name: 'never writes a narinfo before its NAR',
      },
    ],
  },
  {
    id: 's3-narinfo-first',
    file: 'src/caches/s3.ts',
    breaks: 'the S3 cache puts the narinfo before its NAR',
    find: '    await putSpooledObject(target,',
    replace:
      "    await this.putText(`${hashPartOf(narInfo.storePath)}.narinfo`, formatNarInfo(narInfo), 'text/x-nix-narinfo');\n    await putSpooledObject(target,",
    killedBy: [
      {
        file: 'test/caches/s3.test.ts',
        name: 'narinfo only after the NAR',
      },
    ],
  },
  {
    id: 'verify-narhash',
    file: 'src/maintain/verify-path.ts',
    breaks: 'verify no longer checks what a NAR unpacks to against the signed NarHash',
    find: 'if (!hashesEqual(info.narHash, narHash))',
    replace: 'if (false)',
    killedBy: [
      {
        file: 'test/commands/verify.test.ts',
        name: 'unpacks to other bytes',
      },
    ],
  },
  {
    id: 'verify-filehash',
    file: 'src/maintain/verify-path.ts',
    breaks: 'verify no longer checks the NAR file against FileHash',
    find: "if (info.fileHash && info.fileHash.algorithm === 'sha256' && !hashesEqual(info.fileHash, fileHash)) {",
    replace: "if (info.fileHash && info.fileHash.algorithm === 'sha256' && !hashesEqual(info.fileHash, info.fileHash)) {",
    killedBy: [
      {
        file: 'test/commands/verify.test.ts',
        name: 'unpacks to other bytes',
      },
    ],
  },
  {
    id: 'verify-nar-truncation',
    file: 'src/maintain/nar-digest.ts',
    breaks: 'verify no longer notices a NAR that stops early (its NAR parser is never ended)',
    find: 'this.parser.end();',
    replace: 'void this.parser;',
    killedBy: [
      {
        file: 'test/commands/verify.test.ts',
        name: 'truncated NAR',
      },
      {
        file: 'test/commands/verify.test.ts',
        name: 'large uncompressed NAR cut short',
      },
    ],
  },
  {
    id: 'verify-signature',
    file: 'src/maintain/verify-path.ts',
    breaks: 'verify accepts a narinfo no trusted key signed',
    find: 'if (!info.sigs.some((sig) => verifySignature(sig, fingerprint, keys))) {',
    replace: 'if (!info.sigs.some((sig) => verifySignature(sig, fingerprint, keys) || true)) {',
    killedBy: [
      {
        file: 'test/commands/verify.test.ts',
        name: 'tampered narinfo',
      },
    ],
  },
  {
    id: 'trust-nix-remote-unset',
    file: 'src/nixconf/trust.ts',
    breaks: 'every non-root user counts as trusted when NIX_REMOTE is unset (the default multi-user setup)',
    find: 'if (writable) return',
    replace: 'if (writable || !env.NIX_REMOTE) return',
    killedBy: [
      {
        file: 'test/nixconf/trust.test.ts',
        name: 'NIX_REMOTE unset',
      },
    ],
  },
  {
    id: 'trust-daemon-ignored',
    file: 'src/nixconf/trust.ts',
    breaks: 'with NIX_REMOTE=daemon, a user who can write the store directory is trusted without asking',
    find: "return remote === 'daemon' || remote.startsWith('unix://');",
    replace: "return remote === '\\0';",
    killedBy: [
      {
        file: 'test/nixconf/trust.test.ts',
        name: 'detectTrust',
      },
    ],
  },
  // The push daemon signs and pushes what it is handed: only its own user may hand it anything.
  {
    id: 'daemon-folder-others-write',
    file: 'src/push/daemon/owned-folder.ts',
    breaks: 'a daemon with its socket in a shared folder (1777) adopts an inbox another user made there, and pushes what they name',
    find: 'if ((info.mode & 0o022) !== 0) {',
    replace: 'if (false) {',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: 'an inbox or socket folder another user made' }],
  },
  {
    id: 'daemon-folder-foreign-owner',
    file: 'src/push/daemon/owned-folder.ts',
    breaks: 'the daemon takes jobs from an inbox another user owns (and can chmod open again at will)',
    find: 'if (info.uid !== myUid()) refuseForeign(shown, what, info.uid);',
    replace: '',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: 'an inbox or socket folder another user made' }],
  },
  {
    id: 'daemon-inbox-0777',
    file: 'src/push/daemon/hook.ts',
    breaks: 'the post-build-hook inbox is made 0777: any local user can queue paths for the daemon to sign and push',
    find: 'await makeFolder(inboxDir, { recursive: false, mode: 0o700 });',
    replace: 'await makeFolder(inboxDir, { recursive: false, mode: 0o777 });',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: "the daemon's inbox is 0700" }],
  },
  {
    id: 'daemon-inbox-follows-links',
    file: 'src/push/daemon/inbox.ts',
    breaks: 'a link in the inbox is followed: the daemon reads (and pushes what is named in) a file it was pointed at',
    find: 'constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK',
    replace: 'constants.O_RDONLY | constants.O_NONBLOCK',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: 'a FIFO, a link or escape sequences' }],
  },
  {
    id: 'daemon-inbox-blocks-on-fifo',
    file: 'src/push/daemon/inbox.ts',
    breaks: 'a FIFO in the inbox blocks the read, and every job after it waits forever',
    find: 'constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK',
    replace: 'constants.O_RDONLY | constants.O_NOFOLLOW',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: 'a FIFO, a link or escape sequences' }],
  },
  {
    id: 'daemon-inbox-any-file-type',
    file: 'src/push/daemon/inbox.ts',
    breaks: 'an inbox entry that is not a regular file is read as a job, and stays there to be read again',
    find: "if (!info.isFile()) return await this.discard(name, 'is not a regular file');",
    replace: '',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: 'a FIFO, a link or escape sequences' }],
  },
  {
    id: 'daemon-job-text-raw',
    file: 'src/push/daemon/inbox.ts',
    breaks: "escape sequences in a job reach the daemon's log (and the terminal showing it) raw",
    find: "ignoring '${printable(line.slice(0, 200))}'",
    replace: "ignoring '${line.slice(0, 200)}'",
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: 'a FIFO, a link or escape sequences' }],
  },
  {
    id: 'daemon-hook-advice-non-root',
    file: 'src/commands/daemon/run.ts',
    breaks: "a non-root daemon tells the user to put a hook file that user can rewrite into nix.conf, which root's nix-daemon runs as root",
    find: 'if (process.getuid?.() === 0) return',
    replace: 'if (process.getuid?.() !== -1) return',
    killedBy: [{ file: 'test/push/daemon/hostile-user.test.ts', name: "a non-root daemon's start-up line" }],
  },
  {
    id: 'daemon-addrinuse-raw',
    file: 'src/push/daemon/socket.ts',
    breaks: 'a second daemon on a live socket fails with a raw EADDRINUSE instead of naming the running one',
    find: "if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {",
    replace: 'if (true) {',
    killedBy: [
      { file: 'test/commands/daemon.test.ts', name: 'a second daemon on a live socket is refused' },
      { file: 'test/push/daemon/hostile-user.test.ts', name: 'of two daemons started at once' },
    ],
  },
  {
    id: 'trust-any-group',
    file: 'src/nixconf/trust.ts',
    breaks: 'membership of any group counts for an @group in trusted-users',
    find: 'user.groups.includes(entry.value.slice(1))',
    replace: 'user.groups.length > 0',
    killedBy: [
      {
        file: 'test/nixconf/trust.test.ts',
        name: 'trusted-users rule',
      },
    ],
  },
  {
    id: 'keypair-overwrite',
    file: 'src/commands/generate-keypair.ts',
    breaks: 'generate-keypair replaces an existing signing key',
    find: 'if (existing?.signingKey) {',
    replace: 'if (false) {',
    killedBy: [
      {
        file: 'test/commands/generate-keypair.test.ts',
        name: 'refuses',
      },
    ],
  },
  {
    id: 'create-overwrite',
    file: 'src/commands/create.ts',
    breaks: 'create replaces an existing cache entry and its key',
    find: 'if (config.caches[name]) {',
    replace: 'if (false) {',
    killedBy: [
      {
        file: 'test/commands/generate-keypair.test.ts',
        name: 'create of a name that exists',
      },
    ],
  },
  {
    id: 'config-mode',
    file: 'src/config.ts',
    breaks: 'the config holding keys and tokens is written world-readable',
    find: 'await writeFileAtomically(path, text, { mode: 0o600 });',
    replace: 'await writeFileAtomically(path, text, { mode: 0o644 });',
    killedBy: [
      {
        file: 'test/config.test.ts',
        name: '0600',
      },
    ],
  },
  {
    id: 'netrc-keeps-mode',
    file: 'src/nixconf/write.ts',
    breaks: 'a netrc others can read stays readable when our token is added to it',
    find: 'const mode = options.secret ? 0o600 : previous',
    replace: 'const mode = previous',
    killedBy: [
      {
        file: 'test/commands/use.test.ts',
        name: '0644',
      },
    ],
  },
  {
    id: 'netrc-backup-mode',
    file: 'src/nixconf/write.ts',
    breaks: "the netrc's backup keeps a world-readable mode",
    find: 'if (options.secret) await chmod(backupPath, 0o600);',
    replace: 'if (options.secret) await chmod(backupPath, 0o644);',
    killedBy: [
      {
        file: 'test/commands/use.test.ts',
        name: '0644',
      },
    ],
  },
  {
    id: 'report-message',
    file: 'src/cli.ts',
    breaks: "a user error's message is printed unredacted",
    find: 'stderr.write(`cachix: ${redactSecrets(error.message)}\\n`);',
    replace: 'stderr.write(`cachix: ${error.message}\\n`);',
    killedBy: [
      {
        file: 'test/reliability/secrets.test.ts',
        name: 'reporter',
      },
    ],
  },
  {
    id: 'report-hint',
    file: 'src/cli.ts',
    breaks: "a user error's hint is printed unredacted",
    find: 'if (error.hint) stderr.write(`  ${redactSecrets(error.hint)}\\n`);',
    replace: 'if (error.hint) stderr.write(`  ${error.hint}\\n`);',
    killedBy: [
      {
        file: 'test/reliability/secrets.test.ts',
        name: 'reporter',
      },
    ],
  },
  {
    id: 'report-unexpected',
    file: 'src/cli.ts',
    breaks: "an unexpected error's message is printed unredacted",
    find: 'stderr.write(`cachix: ${redactSecrets(message)}\\n`);',
    replace: 'stderr.write(`cachix: ${message}\\n`);',
    killedBy: [
      {
        file: 'test/reliability/secrets.test.ts',
        name: 'reporter',
      },
    ],
  },
  {
    id: 'report-stack',
    file: 'src/cli.ts',
    breaks: 'the stack printed with --verbose is unredacted',
    find: "if (verbose) stderr.write(redactSecrets(String((error as Error).stack ?? '')) + '\\n');",
    replace: "if (verbose) stderr.write(String((error as Error).stack ?? '') + '\\n');",
    killedBy: [
      {
        file: 'test/reliability/secrets.test.ts',
        name: 'reporter',
      },
    ],
  },
  {
    id: 'redact-registered',
    file: 'src/redact.ts',
    breaks: 'a token seen at run time is printed',
    find: "for (const secret of registered) out = out.split(secret).join('<redacted>');",
    replace: '',
    killedBy: [
      {
        file: 'test/redact.test.ts',
      },
    ],
  },
  {
    id: 'redact-short-threshold',
    file: 'src/redact.ts',
    breaks: 'registered secrets shorter than 80 characters are printed',
    find: 'secret.length >= 8',
    replace: 'secret.length >= 80',
    killedBy: [
      {
        file: 'test/redact.test.ts',
      },
    ],
  },
  {
    id: 'redact-secret-key',
    file: 'src/redact.ts',
    breaks: 'a Nix secret key is printed',
    find: "out = out.replace(/([A-Za-z0-9._-]+:)[A-Za-z0-9+/]{86}==/g, '$1<redacted secret key>');",
    replace: '',
    killedBy: [
      {
        file: 'test/redact.test.ts',
      },
    ],
  },
  {
    id: 'redact-bearer',
    file: 'src/redact.ts',
    breaks: 'a bearer token is printed',
    find: "out = out.replace(/(Bearer\\s+)[^\\s\"']+/gi, '$1<redacted>');",
    replace: '',
    killedBy: [
      {
        file: 'test/redact.test.ts',
      },
    ],
  },
  {
    id: 'redact-url-password',
    file: 'src/redact.ts',
    breaks: 'a password in a URL is printed',
    find: "out = out.replace(/(\\/\\/[^/\\s:@]+:)[^@\\s/]+@/g, '$1<redacted>@');",
    replace: '',
    killedBy: [
      {
        file: 'test/redact.test.ts',
      },
    ],
  },
  {
    id: 'redact-query',
    file: 'src/redact.ts',
    breaks: 'token/secret/password/signature parameters are printed',
    find: "out = out.replace(/((?:token|secret|password|X-Amz-Signature|Signature)=)[^&\\s\"']+/gi, '$1<redacted>');",
    replace: '',
    killedBy: [
      {
        file: 'test/redact.test.ts',
      },
    ],
  },
  {
    id: 'spool-enospc',
    file: 'src/push/nar/spool-errors.ts',
    breaks: 'a full spool folder fails with a raw ENOSPC instead of saying where and what to free',
    find: "    case 'ENOSPC':\n",
    replace: "    case 'ENOSPC-never':\n",
    killedBy: [{ file: 'test/reliability/user-errors.test.ts', name: 'spool folder' }],
  },
  {
    id: 'spool-erofs',
    file: 'src/push/nar/spool-errors.ts',
    breaks: 'a file cache on a read-only file system fails with a raw EROFS',
    find: "    case 'EROFS':\n",
    replace: "    case 'EROFS-never':\n",
    killedBy: [{ file: 'test/reliability/user-errors.test.ts', name: 'read-only' }],
  },
  {
    id: 'early-closure-other-paths',
    file: 'src/store/early-closure.ts',
    breaks: 'a push takes the closure query started early for other paths, and pushes the wrong closure',
    find: 'taken.paths.some((path, index) => path !== paths[index])',
    replace: 'taken.paths.some(() => false)',
    killedBy: [{ file: 'test/store/early-closure.test.ts', name: 'is taken by the push that asks for the same paths' }],
  },
  {
    id: 'plain-push-options',
    file: 'src/cli/plain-push.ts',
    breaks: 'a push with --no-closure or --with-build-deps has its closure listed before the parser sees the option',
    find: '    else if (!FLAGS.has(arg)) return undefined;',
    replace: '    else if (!FLAGS.has(arg)) continue;',
    killedBy: [{ file: 'test/cli/plain-push.test.ts', name: 'any other option, anywhere' }],
  },
  {
    id: 'listed-lookup-covers-all',
    file: 'src/caches/listed-lookup.ts',
    breaks: 'a lookup beyond the listed page is judged from that page, so a path the cache has is called missing or one it lacks present',
    find: 'const covers = (hashPart: string): boolean => !page.truncated || `${hashPart}.narinfo` <= lastName;',
    replace: 'const covers = (hashPart: string): boolean => hashPart !== lastName;',
    killedBy: [{ file: 'test/caches/listed-lookup.test.ts', name: 'never calls a path present' }],
  },
  {
    id: 's3-listing-no-fallback',
    file: 'src/caches/s3.ts',
    breaks: 'a key that may not list the bucket fails every push instead of asking by HEAD',
    find: '          this.listingWorks = false;\n          return undefined;',
    replace: '          throw new Error("listing refused");',
    killedBy: [{ file: 'test/caches/s3.test.ts', name: 'a key that may not list the bucket' }],
  },
  {
    id: 'attic-stream-narhash',
    file: 'src/push/nar/source.ts',
    breaks: 'a same-size tampered path reaches a server that signs (attic): its stream checks the size only',
    find: 'checkNarAgainstRecord(info, next.value.narDigest, next.value.narSize);',
    replace: 'if (next.value.narSize !== info.narSize) checkNarAgainstRecord(info, next.value.narDigest, next.value.narSize);',
    killedBy: [
      { file: 'test/push/nar/source.test.ts', name: 'is refused by its NarHash' },
      { file: 'test/caches/attic.test.ts', name: 'is refused before its last byte' },
    ],
  },
  {
    id: 'attic-stream-last-chunk',
    file: 'src/push/nar/source.ts',
    breaks: "a tampered NAR's last byte reaches the server before the NarHash is checked",
    find: '      if (held) yield held;\n      held = next.value;',
    replace: '      yield next.value;',
    killedBy: [{ file: 'test/push/nar/source.test.ts', name: 'never gives its last byte' }],
  },
  {
    id: 'pool-discard-placed',
    file: 'src/push/nar/staged.ts',
    breaks: "a failed push deletes NARs a small-NAR worker already placed under their final names: another push's narinfo may name them",
    find: 'if (!prepared.placed) removeIfPresent(prepared.localPath);',
    replace: 'removeIfPresent(prepared.localPath);',
    killedBy: [{ file: 'test/push/nar/small-pool.test.ts', name: 'a failed push leaves the NARs its workers already placed' }],
  },
  {
    id: 'spool-failure-leaves-file',
    file: 'src/push/nar/prepare.ts',
    breaks: 'a spool write or placement that fails leaves its .tmp- file behind (on a worker: nothing else removes it)',
    find: '    removeIfPresent(localPath);\n    forgetTemporaryFile(localPath);\n    throw spoolErrorToUser',
    replace: '    forgetTemporaryFile(localPath);\n    throw spoolErrorToUser',
    killedBy: [
      { file: 'test/push/nar/small-pool.test.ts', name: 'a worker whose spool write fails' },
      { file: 'test/reliability/user-errors.test.ts', name: 'the spool folder (TMPDIR) fills up' },
    ],
  },
  {
    id: 'plain-push-unclassified',
    file: 'src/cli/plain-push.ts',
    breaks:
      'an option push accepts is missing from the plain-push tables, so a plain push with it waits for the parser (or a new option is never weighed)',
    find: "const FLAGS = new Set(['-v', '--verbose', '--omit-deriver', '--include-upstream', '--logs', '--listings', '--debug-info']);",
    replace: "const FLAGS = new Set(['-v', '--verbose', '--omit-deriver', '--logs', '--listings', '--debug-info']);",
    killedBy: [{ file: 'test/cli/plain-push.test.ts', name: 'every option of the program and of push is stepped over' }],
  },
  {
    id: 'listing-nar-offset',
    file: 'src/nix/nar/listing.ts',
    breaks: 'nix store cat reads the wrong bytes of a file from a cache: its listing points beside its contents',
    find: 'const narOffset = this.parser?.position ?? 0;',
    replace: 'const narOffset = (this.parser?.position ?? 0) + 8;',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'file cache' }],
  },
  {
    id: 'debuginfo-build-id-rule',
    file: 'src/nix/nar/listing.ts',
    breaks: 'dwarffs finds no debug symbols: the index skips the build-id files Nix indexes',
    find: '([0-9a-f]{38}\\.debug)$/;',
    replace: '([0-9a-f]{39}\\.debug)$/;',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'file cache' }],
  },
  {
    id: 'listing-files-not-written',
    file: 'src/push/upload-order.ts',
    breaks: 'push --listings writes no listing, and nix store ls fetches whole NARs',
    find: 'if (extras && prepared.listing) await writeListingFiles(',
    replace: 'if (extras && prepared.listing && false) await writeListingFiles(',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'nginx' }],
  },
  {
    id: 'listing-not-on-worker',
    file: 'src/push/nar/small-window.ts',
    breaks: 'a push of many small paths writes no listings for them',
    find: '    listing: options.listing,',
    replace: '    listing: options.listing && false,',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'worker pool' }],
  },
  {
    id: 'build-log-not-written',
    file: 'src/push/upload-order.ts',
    breaks: 'push --logs uploads no build log, and nix log --store finds nothing',
    find: 'if (extras?.logs && summary.extras) await writeBuildLog(',
    replace: 'if (extras?.logs && summary.extras && false) await writeBuildLog(',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 's3rver' }],
  },
  {
    id: 'logs-setting-ignored',
    file: 'src/push/prepare.ts',
    breaks: 'logs = true in the config does nothing: a CI that relies on it uploads no logs',
    find: 'const logs = flags.logs === true || opened.entry?.logs === true;',
    replace: 'const logs = flags.logs === true;',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'in the config' }],
  },
  {
    id: 'log-content-encoding',
    file: 'src/push/cache-extras.ts',
    breaks: 'a log compressed for S3 is served without Content-Encoding, and nix log prints compressed bytes',
    find: 'await cache.putFile!(name, await compressed(method, body), contentType, method);',
    replace: 'await cache.putFile!(name, await compressed(method, body), contentType);',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'log-compression=br' }],
  },
  {
    id: 'extras-silently-dropped',
    file: 'src/push/prepare.ts',
    breaks: 'logs asked of a cachix API cache vanish without a word',
    find: 'context.log(`note: ${opened.cache.description} has no route for ${asked}: they are not uploaded`);',
    replace: 'void asked;',
    killedBy: [{ file: 'test/push/cache-extras.test.ts', name: 'cachix API' }],
  },
  {
    id: 'gc-pin-gap',
    file: 'src/maintain/gc.ts',
    breaks:
      "gc deletes what lies below a gap in a pin's closure (a missing narinfo in the middle), so the pin cannot be substituted once the narinfo is back",
    find: 'if (plan.pinGaps.length > 0 && !options.dryRun && !options.acceptPinGaps)',
    replace: 'if (false)',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'gc refuses, naming the pin and the missing path' }],
  },
  {
    id: 'gc-max-size-skips',
    file: 'src/maintain/gc-plan.ts',
    breaks: 'gc --max-size deletes every older path once the newest one does not fit',
    find: 'if (keptBytes + addedBytes > policy.maxSizeBytes) continue;',
    replace: 'if (keptBytes + addedBytes > policy.maxSizeBytes) break;',
    killedBy: [{ file: 'test/maintain/gc-plan.test.ts', name: 'a newest path too big for the budget' }],
  },
  {
    id: 'gc-counts-own-narinfos',
    file: 'src/maintain/remove-paths.ts',
    breaks: 'two gcs at once both report the same deleted paths',
    find: '      if (removed) {',
    replace: '      if (removed || !removed) {',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'each deletion is reported by exactly one' }],
  },
  {
    id: 'gc-counts-own-nars',
    file: 'src/maintain/remove-paths.ts',
    breaks: 'two gcs at once both count the same deleted NAR files',
    find: '      if (!(await cache.deleteFile(name))) return;',
    replace: '      await cache.deleteFile(name);',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'each deletion is reported by exactly one' }],
  },
  {
    id: 'http-delete-404-not-ours',
    file: 'src/caches/http.ts',
    breaks: "a DELETE answered 404 (another gc's deletion) is counted as this gc's",
    find: '    return response.statusCode !== 404;',
    replace: '    return true;',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'each deletion is reported by exactly one' }],
  },
  {
    id: 'gc-marker-at-start',
    file: 'src/maintain/remove-paths.ts',
    breaks: 'a push that ends while a gc still runs does not check its closure again, and refers to paths the gc deleted',
    find: "  await cache.putFile(GC_MARKER_FILE, formatGcMarker({ startedAt }), 'application/json');\n",
    replace: '',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'ending while the gc still runs' }],
  },
  {
    id: 'gc-interrupted-line',
    file: 'src/commands/gc.ts',
    breaks: 'Ctrl-C during gc exits 130 saying nothing',
    find: "    context.stderr.write(`\\n${interruptedLine(tally, 'gc')}\\n`);",
    replace: "    void interruptedLine(tally, 'gc');",
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'Ctrl-C during gc' }],
  },
  {
    id: 'delete-dry-run',
    file: 'src/maintain/delete-paths.ts',
    breaks: 'delete --dry-run deletes',
    find: '  if (options.dryRun) return { inventory, waves };',
    replace: '',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'delete --dry-run' }],
  },
  {
    id: 'pin-concurrent-writers',
    file: 'src/maintain/pins.ts',
    breaks: 'two pins written at once on one name lose a revision',
    find: '    if (!merged) return current;',
    replace: '    if (merged || !merged) return current;',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'two pins written at once' }],
  },
  {
    id: 'push-recheck-round-counted',
    file: 'src/push/pipeline.ts',
    breaks: 'a push that uploads again what a gc removed prints counters past their total ([2/1] pushed)',
    find: '        progress.start(\n          again.length,',
    replace: '        void Math.max(\n          again.length,',
    killedBy: [{ file: 'test/commands/gc-safety.test.ts', name: 'no counter passes its total' }],
  },
  {
    id: 'attic-tally',
    file: 'src/push/upload-order.ts',
    breaks: 'an interrupted attic push says "0 of N paths pushed" whatever it pushed',
    find: '      if (tally) tally.pushed = summary.pushed;\n      summary.narBytes += info.narSize;\n      summary.fileBytes += sent.sentBytes;',
    replace: '      summary.narBytes += info.narSize;\n      summary.fileBytes += sent.sentBytes;',
    killedBy: [{ file: 'test/push/interrupt-attic.test.ts', name: 'after one of two paths' }],
  },
  {
    id: 'http-put-no-folders',
    file: 'src/caches/http.ts',
    breaks:
      'against a WebDAV server that makes no folders on PUT (rclone), create into a new folder, the first push (nar/) and pin (pins/) fail',
    find: 'const folderAttempt = await this.folders.makeParentOf(new URL(relativeUrl, this.base).pathname);',
    replace: "const folderAttempt = await this.folders.makeParentOf('/');",
    killedBy: [{ file: 'test/caches/http-folders.test.ts', name: 'the missing folders are made, parents first' }],
  },
  {
    id: 'http-put-mkcol-always',
    file: 'src/caches/http.ts',
    breaks: 'every upload to nginx costs a MKCOL and a second PUT, though nginx makes its folders itself',
    find: 'if (!stored.includes(response.statusCode)) {',
    replace: 'if (stored.length > 0) {',
    killedBy: [{ file: 'test/caches/http-folders.test.ts', name: 'is sent no MKCOL' }],
  },
  {
    id: 'http-mkcol-no-parents',
    file: 'src/caches/http-folders.ts',
    breaks: 'a cache whose parent folders are missing too cannot be created on rclone',
    find: 'const parent = status === 409 ? parentFolderOf(folderPath) : undefined;',
    replace: 'const parent = status === 409 ? undefined : undefined;',
    killedBy: [{ file: 'test/caches/http-folders.test.ts', name: 'the missing folders are made, parents first' }],
  },
  {
    id: 'http-mkcol-not-shared',
    file: 'src/caches/http-folders.ts',
    breaks: 'the NARs of one push that meet the same missing folder each send their own MKCOL',
    find: 'let attempt = this.inFlight.get(folderPath);',
    replace: 'let attempt = undefined as Promise<FolderAttempt> | undefined;',
    killedBy: [{ file: 'test/caches/http-folders.test.ts', name: 'share one MKCOL' }],
  },
  {
    id: 'upload-advice-nginx-only',
    file: 'src/caches/http-errors.ts',
    breaks: 'a WebDAV server that is not nginx is told to change nginx settings',
    find: "if (/^nginx\\b/i.test(server ?? '')) {",
    replace: 'if (server === server) {',
    killedBy: [{ file: 'test/caches/http-folders.test.ts', name: 'a read-only rclone' }],
  },
  {
    id: 'spool-mode-worker',
    file: 'src/push/nar/prepare.ts',
    breaks: 'small NARs spooled on the worker pool are readable by every user of a shared TMPDIR',
    find: 'writeFileSync(localPath, small.compressed, { mode: spoolFileMode(directory) });',
    replace: 'writeFileSync(localPath, small.compressed, { mode: spoolFileMode(directory) | 0o644 });',
    killedBy: [{ file: 'test/push/spool-mode.test.ts', name: 'the small ones on the worker pool' }],
  },
  {
    id: 'spool-mode-small',
    file: 'src/push/nar/prepare.ts',
    breaks: 'small NARs spooled on the main thread are readable by every user of a shared TMPDIR',
    find: 'writeFileSync(localPath, small.compressed, { mode: spoolFileMode(directory) });',
    replace: 'writeFileSync(localPath, small.compressed, { mode: spoolFileMode(directory) | 0o644 });',
    killedBy: [{ file: 'test/push/spool-mode.test.ts', name: 'the small ones compressed in memory on the main thread' }],
  },
  {
    id: 'spool-mode-direct',
    file: 'src/push/nar/spool.ts',
    breaks: 'a big NAR spooled through zstd is readable by every user of a shared TMPDIR',
    find: "const fd = openSync(localPath, 'w', spoolFileMode(dirname(localPath)));",
    replace: "const fd = openSync(localPath, 'w', spoolFileMode(dirname(localPath)) | 0o644);",
    killedBy: [{ file: 'test/push/spool-mode.test.ts', name: 'the big NAR streamed' }],
  },
  {
    id: 'spool-mode-stream',
    file: 'src/push/nar/spool.ts',
    breaks: 'a big NAR spooled through xz is readable by every user of a shared TMPDIR',
    find: 'highWaterMark: 1 << 20, mode: spoolFileMode(dirname(localPath)) }',
    replace: 'highWaterMark: 1 << 20, mode: spoolFileMode(dirname(localPath)) | 0o644 }',
    killedBy: [{ file: 'test/push/spool-mode.test.ts', name: 'every NAR through the stream pipeline' }],
  },
  {
    id: 'spool-mode-file-cache',
    file: 'src/push/nar/spool-mode.ts',
    breaks: "a file cache's NARs become 0600, unreadable by the web server or users that share the cache",
    find: 'return spoolDirectory === tmpdir() ? 0o600 : 0o666;',
    replace: 'return spoolDirectory === tmpdir() || true ? 0o600 : 0o666;',
    killedBy: [{ file: 'test/push/spool-mode.test.ts', name: 'a file cache' }],
  },
  {
    id: 'cachix-dhall-fallback-tolerant',
    file: 'src/cachix-dhall.ts',
    breaks: 'a malformed cachix.dhall breaks every push, info and verify, also of caches whose key is in our config',
    find: 'if (error instanceof UserError) return { problem: error };',
    replace: 'if (error instanceof UserError) throw error;',
    killedBy: [{ file: 'test/commands/cachix-dhall-fallback.test.ts', name: 'is not read into the way' }],
  },
  {
    id: 'cachix-dhall-problem-for-key',
    file: 'src/push/signing-key.ts',
    breaks: 'a push whose key could only be in a malformed cachix.dhall says "no signing key" instead of naming the file and line',
    find: 'if (opened.cachixDhallProblem) throw opened.cachixDhallProblem;',
    replace: "if (opened.cachixDhallProblem && opened.url === '') throw opened.cachixDhallProblem;",
    killedBy: [{ file: 'test/commands/cachix-dhall-fallback.test.ts', name: 'could only find its key there' }],
  },
  {
    id: 'cachix-dhall-problem-for-api',
    file: 'src/caches/open.ts',
    breaks: 'a cachix API cache is used without the token, host or key a malformed cachix.dhall holds, and the user is not told why',
    find: "if (cachixDhallProblem && url.startsWith('cachix:')) throw cachixDhallProblem;",
    replace: "if (cachixDhallProblem && url.startsWith('cachix:x')) throw cachixDhallProblem;",
    killedBy: [{ file: 'test/commands/cachix-dhall-fallback.test.ts', name: 'a cachix API cache' }],
  },
  {
    id: 'create-hint-shell-word',
    file: 'src/caches/existing-cache.ts',
    breaks: 'the command create prints for a cache URL with a space (or an s3 URL with &) does not run as printed',
    find: '`      cachix create ${name} --url ${shellWord(url)} --no-signing-key`,',
    replace: '`      cachix create ${name} --url ${url} --no-signing-key`,',
    killedBy: [{ file: 'test/commands/create.test.ts', name: 'quotes a URL with a space' }],
  },
  {
    id: 'help-lists-attic',
    file: 'src/cli.ts',
    breaks: '--help does not say that attic caches are supported',
    find: 's3://, attic (attic+https://) and the cachix.org API.',
    replace: 's3:// and the cachix.org API.',
    killedBy: [{ file: 'test/cli/help.test.ts' }],
  },
  {
    id: 'listed-lookup-any-name',
    file: 'src/caches/listed-lookup.ts',
    breaks: 'a path whose hash starts any listed name (a .ls, a leftover, a NAR-like name) counts as present and is never pushed',
    find: 'const listed = new Set(page.names);',
    replace: 'const listed = new Set(page.names.map((name) => `${name.slice(0, 32)}.narinfo`));',
    killedBy: [{ file: 'test/caches/listed-lookup.test.ts', name: 'only a narinfo makes a path present' }],
  },
  {
    id: 's3-lookup-page-complete',
    file: 'src/caches/s3.ts',
    breaks: 'a truncated ListObjectsV2 page is taken as complete: paths past the first page are uploaded again',
    find: 'return { names, truncated: page.IsTruncated === true };',
    replace: 'return { names, truncated: false };',
    killedBy: [{ file: 'test/caches/s3-moto.test.ts', name: 'every listing pages' }],
  },
  {
    id: 's3-list-first-page-only',
    file: 'src/caches/s3.ts',
    breaks: 'info, gc and delete see only the first 1,000 keys of a bucket',
    find: 'continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;',
    replace: 'continuationToken = undefined;',
    killedBy: [{ file: 'test/caches/s3-moto.test.ts', name: 'every listing pages' }],
  },
  {
    id: 's3-refused-credentials-absent',
    file: 'src/caches/s3.ts',
    breaks: 'a wrong secret reads as a bucket without nix-cache-info instead of a refused credential',
    find: 'if (status === 404 || (status === 403 && !refusedCredentials(error, this.description))) return undefined;',
    replace: 'if (status === 404 || status === 403) return undefined;',
    killedBy: [{ file: 'test/caches/s3-moto.test.ts', name: 'wrong secret' }],
  },
  {
    id: 'part-size-fixed',
    file: 'src/caches/part-plan.ts',
    breaks: 'a NAR over 10,000 parts of the default size cannot be uploaded to S3 or the cachix API',
    find: 'const partSize = Math.max(options.preferredPartSize, needed);',
    replace: 'const partSize = Math.max(options.preferredPartSize, Math.min(needed, 0));',
    killedBy: [
      { file: 'test/caches/part-plan.test.ts', name: 'one byte more than 10,000' },
      { file: 'test/reliability/s3-throttling.test.ts', name: 'forced into two big parts' },
    ],
  },
  {
    id: 'pace-never-slows',
    file: 'src/caches/pacing.ts',
    breaks: 'a throttling server (503 SlowDown, 429) gets as many requests at once as ever',
    find: 'if (isThrottling(error)) this.slowDown(cutsAtStart, error);',
    replace: 'if (isThrottling(error) && cutsAtStart < 0) this.slowDown(cutsAtStart, error);',
    killedBy: [
      { file: 'test/caches/pacing.test.ts', name: 'halves what runs at once' },
      { file: 'test/reliability/s3-throttling.test.ts', name: 'slows down' },
    ],
  },
  {
    id: 's3-part-retry-whole',
    file: 'src/caches/s3-multipart.ts',
    breaks: 'a part the server refuses restarts the whole NAR instead of being sent again alone',
    find: 'const sent = await target.call(`PUT part ${index + 1} of ${plan.partCount} of ${key} to`, () =>',
    replace: "const sent = await (<T,>(_what: string, request: () => Promise<T>) => request())('', () =>",
    killedBy: [{ file: 'test/reliability/s3-throttling.test.ts', name: 'sent again alone' }],
  },
];
