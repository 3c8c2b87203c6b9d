// `cachix gc … | head -3`: once the reader of stdout (or stderr) has gone, Node emits EPIPE as an
// 'error' event, and an 'error' event nobody listens to ends the process with a stack trace. As
// for SIGPIPE in other tools, a reader that has gone is not the command's failure: what is still
// written is dropped, and the command finishes what it was doing (a gc deletes what it decided,
// a push completes) so the cache is left as the command would leave it.

/** Errors of a stream whose reader has gone: the pipe closed, or written after it closed. */
const READER_GONE = new Set(['EPIPE', 'ERR_STREAM_DESTROYED']);

export interface GuardedOutput {
  /** Why writing failed, when it failed for another reason than a reader that has gone. */
  failure(): NodeJS.ErrnoException | undefined;
}

/** Listens for `stream`'s write errors: a reader that has gone is quiet, anything else remembered. */
export function guardOutput(stream: NodeJS.WritableStream): GuardedOutput {
  let failure: NodeJS.ErrnoException | undefined;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (!READER_GONE.has(error.code ?? '')) failure ??= error;
  });
  return { failure: () => failure };
}
