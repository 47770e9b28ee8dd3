import type { StrataApi } from '../core/api/contract.js';
import { apiFailureOf, apiMethodNames } from '../core/api/methods.js';
import type { ApiMethodName, ApiReply } from '../core/api/methods.js';
import { parseApiArguments } from '../core/api/schema.js';
import { apiChannel } from './channels.js';

/**
 * The main process's IPC for StrataApi, written against the few members of Electron's ipcMain it
 * uses so that tests can drive it with a fake: one `handle` channel per method of the contract
 * (apiMethodNames), each checking its sender and validating its arguments with the same schema as
 * the web server before the API sees them. Replies are envelopes (`{ ok, value }` or
 * `{ ok: false, error: { code, message } }`): Electron would otherwise reduce a rejection to a
 * message prefixed with "Error invoking remote method".
 */

export interface IpcSenderFrame {
  url: string;
}

export interface IpcInvokeEvent {
  senderFrame: IpcSenderFrame | null;
}

export interface IpcMainLike {
  handle(
    channel: string,
    listener: (event: IpcInvokeEvent, ...args: unknown[]) => Promise<unknown>,
  ): void;
  removeHandler(channel: string): void;
}

export type IpcHandler = (event: IpcInvokeEvent, args: unknown[]) => Promise<ApiReply<unknown>>;

export interface StrataIpcOptions {
  /** The API calls go to; read at every call, so the engine process can be replaced. */
  getApi: () => StrataApi;
  /** Only the app's own renderer (its app:// origin, main frame) may call. */
  isTrustedSender: (event: IpcInvokeEvent) => boolean;
}

/** The handler of every contract method, keyed by method. */
export function createIpcHandlers(options: StrataIpcOptions): Record<ApiMethodName, IpcHandler> {
  const handlers = {} as Record<ApiMethodName, IpcHandler>;
  for (const method of apiMethodNames) {
    handlers[method] = async (event, args) => {
      if (!options.isTrustedSender(event)) {
        return {
          ok: false,
          error: {
            code: 'unauthorized',
            message: `${method}: refused a call from ${event.senderFrame?.url ?? 'an unknown frame'}`,
          },
        };
      }
      try {
        const parsed = parseApiArguments(method, args);
        const api = options.getApi();
        const call = api[method] as (...values: unknown[]) => Promise<unknown>;
        const value = await call.apply(api, parsed);
        return { ok: true, value: value ?? null };
      } catch (error) {
        return { ok: false, error: apiFailureOf(error) };
      }
    };
  }
  return handlers;
}

/** Registers every handler on `ipcMain`; returns their removal. */
export function registerStrataIpc(ipcMain: IpcMainLike, options: StrataIpcOptions): () => void {
  const handlers = createIpcHandlers(options);
  for (const method of apiMethodNames) {
    ipcMain.handle(apiChannel(method), (event, ...args) => handlers[method](event, args));
  }
  return () => {
    for (const method of apiMethodNames) ipcMain.removeHandler(apiChannel(method));
  };
}
