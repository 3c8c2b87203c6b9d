// What an S3 server's refusals mean for the user. S3 answers 403 both for "this key is not
// there and you may not list the bucket" (AccessDenied: Nix reads it as absent) and for "these
// credentials are wrong" (SignatureDoesNotMatch, InvalidAccessKeyId, ExpiredToken...): the second
// must never read as a missing nix-cache-info or narinfo.

import { UserError } from '../errors.js';
import { explainHttpError } from './http-errors.js';
import type { S3Location } from './s3-location.js';

export const S3_CREDENTIALS_HINT =
  'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile from ~/.aws/credentials with ?profile=NAME (or AWS_PROFILE)';

/** S3 error codes that refuse the credentials themselves, with what each means. */
const REFUSED_CREDENTIALS: Record<string, string> = {
  SignatureDoesNotMatch: 'the secret key does not match the access key id',
  InvalidAccessKeyId: 'the server does not know this access key id',
  InvalidToken: 'the session token is not valid',
  ExpiredToken: 'the session token has expired',
  TokenRefreshRequired: 'the session token must be refreshed',
  AuthorizationHeaderMalformed: 'the request was signed for another region',
  InvalidSecurity: 'the server refused the security credentials',
  AccountProblem: 'the account is disabled or has a problem',
};

export function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** One line naming the refused credentials, or undefined when `error` is not such a refusal. */
export function refusedCredentials(error: unknown, description: string): UserError | undefined {
  const code = (error as { name?: unknown; Code?: unknown } | undefined)?.Code ?? (error as { name?: unknown } | undefined)?.name;
  if (typeof code !== 'string' || !Object.hasOwn(REFUSED_CREDENTIALS, code)) return undefined;
  return new UserError(
    `${description} refused our credentials: ${REFUSED_CREDENTIALS[code]} (HTTP ${statusOf(error) ?? 403} ${code})`,
    S3_CREDENTIALS_HINT,
  );
}

/**
 * Any other refusal (4xx) is the server's answer to this request, not a bug of ours: one line
 * naming the request, the status and S3's error code. Anything else is returned unchanged.
 */
export function refusedRequest(error: unknown, what: string, description: string): unknown {
  const status = statusOf(error);
  if (error instanceof UserError || status === undefined || status < 400 || status >= 500) return error;
  const code = (error as { Code?: unknown; name?: unknown }).Code ?? (error as { name?: unknown }).name;
  const detail = typeof code === 'string' && !/^\d+$/.test(code) ? ` ${code}` : '';
  return new UserError(
    `the server refused ${what} ${description} (HTTP ${status}${detail})`,
    "check the cache URL and the server's configuration (its error log says why it refused)",
  );
}

/** The SDK's timeout messages name its own package and config; users need only what happened. */
export function tidySdkTimeout(error: unknown): unknown {
  if (error instanceof Error && error.name === 'TimeoutError' && error.message.startsWith('@smithy/')) {
    error.message = error.message
      .replace(/^@smithy\/[\w-]+ - /, '')
      .replace(/ \((configured by client requestHandler|service default socket timeout)\)\.?$/, '');
  }
  return error;
}

/** What a request's last failure (after its retries) tells the user, in one line where there is one. */
export function explainS3Failure(
  error: unknown,
  request: { what: string; writing: boolean; description: string; location: S3Location },
): unknown {
  const { what, writing, description, location } = request;
  const refused = refusedCredentials(error, description);
  if (refused) return refused;
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'CredentialsProviderError') return new UserError(`no AWS credentials found for ${description}`, S3_CREDENTIALS_HINT);
  if (name === 'NoSuchBucket') {
    return new UserError(
      `the bucket '${location.bucket}' does not exist at ${location.endpoint ?? 'AWS S3'}`,
      'create it first, or check the bucket name and endpoint',
    );
  }
  return refusedRequest(explainHttpError(error, { url: description, writing, credentialsHint: S3_CREDENTIALS_HINT }), what, description);
}
