import type { StrataApi, StrataEvent } from './contract.js';
import {
  StrataApiError,
  apiFailureOf,
  apiMethodNames,
  isApiMethodName,
  unwrapReply,
} from './methods.js';
import type { ApiArgs, ApiMethodName, ApiReply, ApiResult } from './methods.js';
import { parseApiArguments } from './schema.js';

/**
 * StrataApi across a message port: the Electron app runs the API (and so every job) in a
 * utilityProcess and its main process talks to it through this relay, so heavy work never runs
 * on the thread that drives the windows. The port is anything that posts structured-clonable
 * messages both ways: Electron's UtilityProcess / parentPort, a worker_threads MessagePort, a
 * child_process IPC channel. Nothing here imports Node or Electron.
 */

export interface RelayPort {
  postMessage(message: unknown): void;
  /** Registers a listener for incoming messages; returns its removal. */
  onMessage(listener: (message: unknown) => void): () => void;
}

type RelayMessage =
  | { type: 'call'; id: number; method: string; args: unknown }
  | { type: 'reply'; id: number; reply: ApiReply<unknown> }
  | { type: 'event'; event: StrataEvent };

function isRelayMessage(message: unknown): message is RelayMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string'
  );
}

/**
 * The host side: answers calls arriving on `port` with `api` (arguments checked again with the
 * schema, as at every boundary) and forwards every event. Returns a function that stops serving.
 */
export function serveApiOverPort(api: StrataApi, port: RelayPort): () => void {
  const unsubscribe = api.subscribe((event) =>
    port.postMessage({ type: 'event', event } satisfies RelayMessage),
  );
  const stopListening = port.onMessage((message) => {
    if (!isRelayMessage(message) || message.type !== 'call') return;
    const { id, method } = message;
    const answer = async (): Promise<unknown> => {
      if (!isApiMethodName(method)) {
        throw new StrataApiError({
          code: 'not-found',
          message: `StrataApi has no method "${method}"`,
        });
      }
      const args = parseApiArguments(method, message.args);
      const call = api[method] as (...values: unknown[]) => Promise<unknown>;
      return call.apply(api, args);
    };
    answer().then(
      (value) =>
        port.postMessage({
          type: 'reply',
          id,
          reply: { ok: true, value: value ?? null },
        } satisfies RelayMessage),
      (error: unknown) =>
        port.postMessage({
          type: 'reply',
          id,
          reply: { ok: false, error: apiFailureOf(error) },
        } satisfies RelayMessage),
    );
  });
  return () => {
    unsubscribe();
    stopListening();
  };
}

export interface RelayedStrataApi extends StrataApi {
  /** Fails every pending call (the host process died) with this message; later calls fail the same way. */
  disconnect(reason: string): void;
}

/** The calling side: a StrataApi whose methods are answered by `serveApiOverPort` at the other end. */
export function connectApiOverPort(port: RelayPort): RelayedStrataApi {
  let nextId = 1;
  let disconnected: string | undefined;
  const pending = new Map<number, { resolve: (reply: ApiReply<unknown>) => void }>();
  const listeners = new Set<(event: StrataEvent) => void>();

  const stopListening = port.onMessage((message) => {
    if (!isRelayMessage(message)) return;
    if (message.type === 'reply') {
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      waiting?.resolve(message.reply);
    } else if (message.type === 'event') {
      for (const listener of [...listeners]) {
        try {
          listener(message.event);
        } catch {
          // One failing listener (a destroyed window) must not starve the others.
        }
      }
    }
  });

  const call = <M extends ApiMethodName>(method: M, args: ApiArgs<M>): Promise<ApiResult<M>> => {
    if (disconnected !== undefined)
      return Promise.reject(new StrataApiError({ code: 'internal', message: disconnected }));
    const id = nextId++;
    return new Promise<ApiReply<unknown>>((resolve) => {
      pending.set(id, { resolve });
      port.postMessage({ type: 'call', id, method, args: [...args] } satisfies RelayMessage);
    }).then((reply) => unwrapReply(reply) as ApiResult<M>);
  };

  const methods = Object.fromEntries(
    apiMethodNames.map((method) => [
      method,
      (...args: unknown[]) => call(method, args as ApiArgs<typeof method>),
    ]),
  ) as unknown as Omit<StrataApi, 'subscribe'>;

  return {
    ...methods,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    disconnect(reason) {
      disconnected = reason;
      stopListening();
      for (const [id, waiting] of pending) {
        pending.delete(id);
        waiting.resolve({ ok: false, error: { code: 'internal', message: reason } });
      }
    },
  };
}
