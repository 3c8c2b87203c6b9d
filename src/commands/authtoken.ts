import { loadConfig, saveConfig } from '../config.js';
import type { Context, InputStream } from '../context.js';
import { UserError } from '../errors.js';
import { registerSecret } from '../redact.js';

/** A token is a line or two of base64/JWT; anything this large was piped in by mistake. */
const MAX_TOKEN_BYTES = 64 * 1024;

async function readStdin(stdin: InputStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const piece of stdin) {
    const chunk = Buffer.from(piece);
    size += chunk.length;
    if (size > MAX_TOKEN_BYTES) throw new UserError(`standard input holds more than ${MAX_TOKEN_BYTES} bytes, which is not a token`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A server is keyed by host[:port]; a URL given instead is cut down to that. */
function serverKey(text: string): string {
  const trimmed = text.trim();
  let host = trimmed;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    try {
      host = new URL(trimmed).host;
    } catch {
      host = '';
    }
  }
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:.]+\](:\d+)?$/.test(host)) {
    throw new UserError(`'${text}' is not a server`, 'give its host, as in the cache URL: --server attic.example.com (or host:port)');
  }
  return host.toLowerCase();
}

export async function run(
  context: Context,
  tokenArgument: string | undefined,
  options: { stdin?: boolean; server?: string; cache?: string },
): Promise<void> {
  if (tokenArgument !== undefined && options.stdin) {
    throw new UserError(
      'give the token either as an argument or with --stdin, not both',
      'prefer --stdin: an argument stays in shell history',
    );
  }
  if (tokenArgument === undefined && !options.stdin) {
    throw new UserError(
      'no token given',
      'run `cachix authtoken --stdin` and paste the token (then Ctrl-D), or `cachix authtoken <token>`',
    );
  }
  const token = (options.stdin ? await readStdin(context.stdin) : tokenArgument!).trim();
  if (token === '') throw new UserError('the token is empty', 'copy the token from your cache settings and try again');
  if (/\s/.test(token)) throw new UserError('the token contains whitespace, so it is not one token', 'give exactly one token');
  registerSecret(token);

  const config = await loadConfig(context.configPath);
  if (options.server !== undefined) {
    const server = serverKey(options.server);
    config.servers = { ...config.servers, [server]: { token } };
    await saveConfig(context.configPath, config);
    context.stdout.write(`stored the token for ${server} in ${context.configPath} (mode 0600)\n`);
    return;
  }
  if (options.cache !== undefined) {
    const entry = config.caches[options.cache];
    if (!entry) {
      const known = Object.keys(config.caches);
      throw new UserError(
        `no cache named ${JSON.stringify(options.cache)} in ${context.configPath}`,
        known.length > 0 ? `configured caches: ${known.join(', ')}` : 'register it first: cachix create NAME --url URL',
      );
    }
    entry.authToken = token;
  } else {
    config.authToken = token;
  }
  await saveConfig(context.configPath, config);
  const which = options.cache !== undefined ? `the auth token of ${options.cache}` : 'the auth token (for the cachix API)';
  context.stdout.write(`stored ${which} in ${context.configPath} (mode 0600)\n`);
}
