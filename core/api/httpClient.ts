import type { StrataApi, StrataEvent } from './contract.js';
import { StrataApiError, apiMethodNames } from './methods.js';
import type { ApiArgs, ApiFailure, ApiMethodName, ApiResult } from './methods.js';

/**
 * StrataApi for the renderer in a browser, over `strata ui`'s protocol (webServer.ts): each call
 * is `POST /api/<method>` with the JSON array of its arguments; events arrive on one WebSocket
 * (`/api/events`), opened while anyone subscribes and reopened after a drop. Browser code only:
 * fetch and WebSocket, no Node APIs (the renderer imports this file).
 */

/** The part of the WebSocket API used here (the browser's, or a test's). */
export interface EventSocket {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(): void;
}

export type EventSocketFactory = (url: string) => EventSocket;

export interface HttpClientOptions {
  /** Where `strata ui` serves, e.g. `http://127.0.0.1:8080`; the page's own origin when empty. */
  baseUrl?: string;
  /** The session token; without it the cookie `strata ui` set when the page was opened is used. */
  token?: string;
  fetch?: typeof fetch;
  openSocket?: EventSocketFactory;
  /** First reconnect delay of the event socket; doubled after each failure up to 10 s. */
  reconnectDelayMs?: number;
}

const MAX_RECONNECT_DELAY_MS = 10_000;

function defaultSocketFactory(): EventSocketFactory {
  const Socket = (globalThis as { WebSocket?: new (url: string) => EventSocket }).WebSocket;
  if (Socket === undefined) {
    return () => {
      throw new StrataApiError({ code: 'internal', message: 'This environment has no WebSocket' });
    };
  }
  return (url) => new Socket(url);
}

function isFailureBody(body: unknown): body is { error: ApiFailure } {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const error = (body as { error: unknown }).error;
  return (
    typeof error === 'object' && error !== null && typeof (error as ApiFailure).message === 'string'
  );
}

/** The page's own origin as an http(s) base, and the matching ws(s) URL for events. */
function socketUrl(baseUrl: string, token: string | undefined): string {
  const origin =
    baseUrl !== ''
      ? baseUrl
      : ((globalThis as { location?: { origin: string } }).location?.origin ?? '');
  const url = new URL('/api/events', origin);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token !== undefined) url.searchParams.set('token', token);
  return url.toString();
}

export function createHttpStrataApi(options: HttpClientOptions = {}): StrataApi {
  const baseUrl = (options.baseUrl ?? '').replace(/\/$/, '');
  const token = options.token;
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const openSocket = options.openSocket ?? defaultSocketFactory();
  const firstDelayMs = options.reconnectDelayMs ?? 500;

  const call = async <M extends ApiMethodName>(
    method: M,
    args: ApiArgs<M>,
  ): Promise<ApiResult<M>> => {
    const trimmed: unknown[] = [...args];
    // An omitted optional argument would otherwise travel as null.
    while (trimmed.length > 0 && trimmed.at(-1) === undefined) trimmed.pop();
    let response: Response;
    try {
      response = await doFetch(`${baseUrl}/api/${method}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}),
        },
        credentials: 'same-origin',
        body: JSON.stringify(trimmed),
      });
    } catch (error) {
      throw new StrataApiError({
        code: 'unreachable',
        message: `Strata is not reachable (${error instanceof Error ? error.message : String(error)}): is \`strata ui\` still running?`,
      });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      throw new StrataApiError({
        code: 'bad-response',
        message: `${method}: the server answered ${response.status} with a body that is not JSON`,
      });
    }
    if (!response.ok || isFailureBody(body)) {
      throw new StrataApiError(
        isFailureBody(body)
          ? body.error
          : { code: 'bad-response', message: `${method}: HTTP ${response.status}` },
      );
    }
    return body as ApiResult<M>;
  };

  const listeners = new Set<(event: StrataEvent) => void>();
  let socket: EventSocket | undefined;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let delayMs = firstDelayMs;

  const connect = () => {
    reconnectTimer = undefined;
    if (listeners.size === 0 || socket !== undefined) return;
    const current = openSocket(socketUrl(baseUrl, token));
    socket = current;
    current.onopen = () => {
      delayMs = firstDelayMs;
    };
    current.onmessage = (message) => {
      if (typeof message.data !== 'string') return;
      let event: StrataEvent;
      try {
        event = JSON.parse(message.data) as StrataEvent;
      } catch {
        return;
      }
      for (const listener of [...listeners]) listener(event);
    };
    current.onclose = () => {
      if (socket !== current) return;
      socket = undefined;
      if (listeners.size > 0 && reconnectTimer === undefined) {
        reconnectTimer = setTimeout(connect, delayMs);
        delayMs = Math.min(delayMs * 2, MAX_RECONNECT_DELAY_MS);
      }
    };
    current.onerror = () => current.close();
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
      connect();
      return () => {
        listeners.delete(listener);
        if (listeners.size > 0) return;
        if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
        reconnectTimer = undefined;
        const open = socket;
        socket = undefined;
        open?.close();
      };
    },
  };
}

/**
 * The client for a page opened from `strata ui`'s printed URL: same origin, the token from
 * `?token=` of the page's own address (also kept by the server in a cookie).
 */
export function httpStrataApiFromLocation(location: { search: string }): StrataApi {
  const token = new URLSearchParams(location.search).get('token');
  return createHttpStrataApi(token !== null && token !== '' ? { token } : {});
}
