import { UserError } from '../errors.js';
import { HttpStatusError } from './retry.js';
import { causeChain } from '../util/cause-chain.js';
import type { FolderAttempt } from './http-folders.js';

export interface ErrorContext {
  /** The cache URL as shown to the user: never with credentials. */
  url: string;
  /** Whether the failed request was writing (upload, nix-cache-info) or reading. */
  writing: boolean;
  /** What the user should check when credentials are refused. */
  credentialsHint?: string;
  /** The `Server` header of the refusal, so the advice can name that server's settings. */
  server?: string | undefined;
  /** The MKCOL tried before the failed upload was sent again, when one was. */
  folderAttempt?: FolderAttempt | undefined;
}

/** Statuses that say a write cannot happen at that URL: no PUT there, or (404, 409) no folder to put it in. */
const UPLOAD_REFUSED = new Set([404, 405, 409, 501]);

/**
 * What makes a server take a cache's uploads: what any WebDAV server needs, then the settings of
 * the server that answered, when it names itself in its `Server` header.
 */
export function uploadHint(server: string | undefined): string {
  const generic =
    'an HTTP binary cache must take WebDAV PUT at that URL, and MKCOL where it makes no folders on PUT; check the URL, and that the server lets us write there (not read-only)';
  if (/^nginx\b/i.test(server ?? '')) {
    return `${generic}; for nginx: \`dav_methods PUT DELETE MKCOL; create_full_put_path on; client_max_body_size 0;\``;
  }
  if (/^apache\b/i.test(server ?? '')) return `${generic}; for Apache: \`Dav On\` where the cache is (mod_dav, mod_dav_fs)`;
  return generic;
}

export const HTTP_CREDENTIALS_HINT =
  "set CACHIX_AUTH_TOKEN for this command, or store the cache's token with cachix authtoken --cache NAME --stdin; or check the netrc file Nix reads (netrc-file, default /etc/nix/netrc)";

function statusOf(error: unknown): number | undefined {
  if (error instanceof HttpStatusError) return error.status;
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Node's codes for a server certificate that does not chain to a trusted root or does not match the host. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function certificateError(error: unknown): { code: string; message: string } | undefined {
  for (const { code, message } of causeChain(error)) {
    if (typeof code === 'string' && CERTIFICATE_CODES.has(code)) return { code, message: String(message) };
  }
  return undefined;
}

/**
 * Turns a refusal the user can fix into one line that says what to do; anything else is
 * returned unchanged. Works for our HttpStatusError and for AWS SDK errors ($metadata).
 */
export function explainHttpError(error: unknown, context: ErrorContext): unknown {
  const certificate = certificateError(error);
  if (certificate) {
    return new UserError(
      `cannot trust the TLS certificate of ${context.url}: ${certificate.message} (${certificate.code})`,
      'if the server uses a private certificate authority, point NODE_EXTRA_CA_CERTS at its certificate (PEM file)',
    );
  }
  const status = statusOf(error);
  if (status === undefined) return error;
  if (status === 401 || status === 403) {
    return new UserError(
      `the server refused our credentials for ${context.url} (HTTP ${status})`,
      context.credentialsHint ?? HTTP_CREDENTIALS_HINT,
    );
  }
  if (context.writing && UPLOAD_REFUSED.has(status)) {
    const folder = context.folderAttempt;
    const mkcol = folder ? `; MKCOL ${folder.folderPath} answered ${folder.status}` : '';
    return new UserError(`the server does not accept uploads at ${context.url} (HTTP ${status}${mkcol})`, uploadHint(context.server));
  }
  if (context.writing && status === 413) {
    const nginx = /^nginx\b/i.test(context.server ?? '') ? ' (nginx: `client_max_body_size 0;`)' : '';
    return new UserError(
      `the server at ${context.url} refused an upload as too large (HTTP 413)`,
      `raise the server's request body limit${nginx}`,
    );
  }
  // Any other refusal (4xx) is the server's answer to this request, not a bug of ours: one line, no stack.
  if (error instanceof HttpStatusError && status >= 400 && status < 500) {
    return new UserError(error.message, `check the cache URL and the server's configuration (its error log says why it refused)`);
  }
  return error;
}

/** Codes that say the host itself could not be reached: there is no HTTP answer to explain. */
const UNREACHABLE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** The code of a failure to reach a host at all (DNS, refused connection), or undefined. */
export function unreachableCode(error: unknown): string | undefined {
  if (error instanceof UserError) return undefined;
  for (const { code } of causeChain(error)) {
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return code;
  }
  return undefined;
}

/**
 * What a refusal's body says, for the error line: its first line, shortened; nothing for an
 * HTML page (a login portal or a proxy's error page is noise in one line).
 */
export function errorDetailOf(body: string, maxLength = 200): string | undefined {
  const firstLine = body.trim().split('\n')[0]?.slice(0, maxLength);
  return !firstLine || /<html|<!DOCTYPE/i.test(firstLine) ? undefined : firstLine;
}

/**
 * Remembers whether a host has answered anything yet. Until it has, failing to reach it is
 * final: a wrong URL or a server that is not running, which 90 s of retries would only hide.
 * Once it has answered, the same error is a blip, left to the retries.
 */
export class FirstAnswer {
  private answered = false;

  /** `what` names the host in the message: a function when the host may change (attic's api_endpoint). */
  constructor(
    private readonly what: string | (() => string),
    private readonly hint: string,
  ) {}

  /** A response (of any status) arrived. */
  heard(): void {
    this.answered = true;
  }

  /** What to throw for a failed attempt: one line when the host was never reached, else the error itself. */
  failure(error: unknown): unknown {
    if ((error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode) this.answered = true;
    return this.answered ? error : (this.unreachable(error) ?? error);
  }

  /** One line for a failure to reach the host at all (DNS, refused connection), answered before or not. */
  unreachable(error: unknown): UserError | undefined {
    const code = unreachableCode(error);
    const what = typeof this.what === 'string' ? this.what : this.what();
    return code ? new UserError(`cannot reach ${what} (${code})`, this.hint) : undefined;
  }
}
