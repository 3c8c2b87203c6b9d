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
    file: 'src/push/nar-upload.ts',
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
    file: 'src/push/nar-upload.ts',
    breaks: 'a store path whose NAR size differs from what Nix recorded is not named as such',
    find: 'if (spooled.narSize !== info.narSize) throw',
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
    file: 'src/push/nar-upload.ts',
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
    file: 'src/push/nar-upload.ts',
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
    find: '      if (nar.localPath === narPath) {',
    replace:
      '      writeFileAtomicallySync(join(this.root, `${hashPartOf(narInfo.storePath)}.narinfo`), formatNarInfo(narInfo));\n      if (nar.localPath === narPath) {',
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
    find: '    const client = await this.client();\n    await this.call(`upload ${nar.narUrl} to`',
    replace:
      "    const client = await this.client();\n    await this.putText(`${hashPartOf(narInfo.storePath)}.narinfo`, formatNarInfo(narInfo), 'text/x-nix-narinfo');\n    await this.call(`upload ${nar.narUrl} to`",
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
    file: 'src/push/spool-errors.ts',
    breaks: 'a full spool folder fails with a raw ENOSPC instead of saying where and what to free',
    find: "    case 'ENOSPC':\n",
    replace: "    case 'ENOSPC-never':\n",
    killedBy: [{ file: 'test/reliability/user-errors.test.ts', name: 'spool folder' }],
  },
  {
    id: 'spool-erofs',
    file: 'src/push/spool-errors.ts',
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
    find: '        this.listingWorks = false;\n        return undefined;',
    replace: '        throw new Error("listing refused");',
    killedBy: [{ file: 'test/caches/s3.test.ts', name: 'a key that may not list the bucket' }],
  },
  {
    id: 'doctor-any-key-is-the-caches',
    file: 'src/doctor/cache-checks.ts',
    breaks: "doctor calls a signing key the cache's when it is not, and CI finds out by Nix rejecting every path",
    find: "const match = known.find((key) => key.slice(key.indexOf(':') + 1) === publicHalf);",
    replace: 'const match = known.find((key) => key.length > 0 || key === publicHalf);',
    killedBy: [{ file: 'test/doctor/doctor.test.ts', name: "a signing key that is not the cache's" }],
  },
  {
    id: 'doctor-clock-unchecked',
    file: 'src/doctor/clock.ts',
    breaks: 'a clock far enough off to break signed requests passes doctor',
    find: 'if (Math.abs(skewMs) > MAX_CLOCK_SKEW_MS) {',
    replace: 'if (false) {',
    killedBy: [{ file: 'test/doctor/doctor.test.ts', name: 'fails the clock check' }],
  },
  {
    id: 'doctor-refusal-as-server',
    file: 'src/doctor/cache-checks.ts',
    breaks: 'a refused token reads as a broken server, and the user chases the wrong fix',
    find: "return failureOf(cache, refused ? 'token' : 'server', error);",
    replace: "return failureOf(cache, refused && false ? 'token' : 'server', error);",
    killedBy: [{ file: 'test/doctor/doctor.test.ts', name: 'a refused token' }],
  },
  {
    id: 'doctor-untrusted-key-ok',
    file: 'src/doctor/nix-checks.ts',
    breaks: 'a cache Nix reads but whose key it does not trust passes doctor, and every substitution is refused',
    find: 'if (!cache.publicKeys.some((key) => trustedKeys.has(key))) {',
    replace: 'if (!cache.publicKeys.some((key) => trustedKeys.has(key) || true)) {',
    killedBy: [{ file: 'test/doctor/doctor.test.ts', name: 'without trusting its key' }],
  },
  {
    id: 'sign-launders-foreign-narinfos',
    file: 'src/maintain/resign.ts',
    breaks: 'sign puts the cache key on a narinfo someone else wrote or changed, and Nix trusts it',
    find: "if (!info.sigs.some((sig) => verifySignature(sig, fingerprint, plan.trusted))) return { outcome: 'untrusted' };",
    replace: "if (!info.sigs.some((sig) => verifySignature(sig, fingerprint, plan.trusted)) && false) return { outcome: 'untrusted' };",
    killedBy: [{ file: 'test/maintain/key-rotation.test.ts' }],
  },
  {
    id: 'sign-drop-keeps-old-signatures',
    file: 'src/maintain/resign.ts',
    breaks: 'sign --drop leaves the retired (maybe leaked) key able to vouch for every path',
    find: 'if (name === plan.drop) return false;',
    replace: 'if (name === plan.drop && false) return false;',
    killedBy: [{ file: 'test/maintain/key-rotation.test.ts' }],
  },
  {
    id: 'rotate-forgets-old-key',
    file: 'src/commands/generate-keypair.ts',
    breaks: 'after a rotation use and verify forget the old key, cutting off every client at once',
    find: 'retiredSigningKeys: [...retired, existing.signingKey],',
    replace: 'retiredSigningKeys: [...retired],',
    killedBy: [{ file: 'test/maintain/key-rotation.test.ts' }],
  },
  {
    id: 'use-ignores-retired-key',
    file: 'src/caches/for-nix.ts',
    breaks: 'use during a rollover trusts only the new key, so clients refuse every path not yet re-signed',
    find: '...retiredPublicKeys(entry)].map(',
    replace: '...retiredPublicKeys(entry).slice(0, 0)].map(',
    killedBy: [{ file: 'test/maintain/key-rotation.test.ts' }],
  },
  {
    id: 'verify-ignores-retired-key',
    file: 'src/commands/verify.ts',
    breaks: 'verify fails every path signed before a rotation',
    find: '...(entry.retiredSigningKeys ?? []).map(',
    replace: '...(entry.retiredSigningKeys ?? []).slice(0, 0).map(',
    killedBy: [{ file: 'test/maintain/key-rotation.test.ts' }],
  },
];
