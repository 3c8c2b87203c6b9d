// undici's Agent and its request API, loaded without undici's index: the index also loads fetch,
// WebSocket, the mock agents and the caches, which cost a command about 110 ms of CPU at start
// (165 ms against 55 ms here) for code no command runs. These two modules are all a request needs.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method: Undici.Dispatcher.HttpMethod;
  dispatcher: Undici.Dispatcher;
};
type DispatcherRequest = (this: Undici.Dispatcher, options: Undici.Dispatcher.RequestOptions) => Promise<Undici.Dispatcher.ResponseData>;

export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;
const dispatcherRequest = load('undici/lib/api/api-request.js') as DispatcherRequest;

/** undici's `request(url, options)`, always through the dispatcher given. */
export function request(url: URL, { dispatcher, ...options }: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  return dispatcherRequest.call(dispatcher, { ...options, origin: url.origin, path: `${url.pathname}${url.search}` });
}
