import { UserError } from '../errors.js';
import { HttpStatusError } from './retry.js';

export interface ErrorContext {
  /** The cache URL as shown to the user: never with credentials. */
  url: string;
  /** Whether the failed request was writing (upload, nix-cache-info) or reading. */
  writing: boolean;
  /** What the user should check when credentials are refused. */
  credentialsHint?: string;
}

export const HTTP_CREDENTIALS_HINT = 'run `cachix authtoken <token>`, or check the netrc file (Nix\'s netrc-file, default /etc/nix/netrc)';

function statusOf(error: unknown): number | undefined {
  if (error instanceof HttpStatusError) return error.status;
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Turns a refusal the user can fix into one line that says what to do; anything else is
 * returned unchanged. Works for our HttpStatusError and for AWS SDK errors ($metadata).
 */
export function explainHttpError(error: unknown, context: ErrorContext): unknown {
  const status = statusOf(error);
  if (status === undefined) return error;
  if (status === 401 || status === 403) {
    return new UserError(`the server refused our credentials for ${context.url} (HTTP ${status})`, context.credentialsHint ?? HTTP_CREDENTIALS_HINT);
  }
  if (context.writing && (status === 404 || status === 405 || status === 501)) {
    return new UserError(
      `the server does not accept uploads at ${context.url} (HTTP ${status})`,
      'an HTTP binary cache must take PUT requests; for nginx: `dav_methods PUT; create_full_put_path on; client_max_body_size 0;`',
    );
  }
  if (context.writing && status === 413) {
    return new UserError(
      `the server at ${context.url} refused an upload as too large (HTTP 413)`,
      'raise the server\'s request body limit (nginx: `client_max_body_size 0;`)',
    );
  }
  return error;
}
