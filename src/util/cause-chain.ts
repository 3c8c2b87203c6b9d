// An error and the errors it wraps (`cause`), outermost first: fetch, undici and the AWS SDK
// each wrap the code that says what really happened (ECONNREFUSED, a certificate problem) a
// level or two down. Bounded, so a cycle cannot loop forever.

export interface ErrorFields {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number };
}

const MAX_DEPTH = 8;

export function* causeChain(error: unknown): Generator<ErrorFields & object> {
  let current = error;
  for (let depth = 0; current && typeof current === 'object' && depth < MAX_DEPTH; depth++) {
    const fields = current as ErrorFields & object;
    yield fields;
    current = fields.cause;
  }
}
