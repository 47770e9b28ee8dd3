import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { StrataApi, StrataEvent } from '../core/api/contract.js';
import type { DesktopBridge } from '../core/api/desktopBridge.js';
import { apiMethodNames, unwrapReply } from '../core/api/methods.js';
import type { ApiReply } from '../core/api/methods.js';
import {
  CHOOSE_DIRECTORY_CHANNEL,
  EVENT_CHANNEL,
  OPEN_CATALOG_CHANNEL,
  apiChannel,
} from './channels.js';

// The preload runs sandboxed: contextBridge and ipcRenderer, nothing else. It exposes
// `window.strata` (StrataApi, one invoke per method of the contract) and `window.strataDesktop`
// (the native folder picker and menu commands). Failures reject with an Error carrying the
// engine's message; contextBridge copies errors without custom properties, so no `code`.

const methods = Object.fromEntries(
  apiMethodNames.map((method) => [
    method,
    async (...args: unknown[]) =>
      unwrapReply((await ipcRenderer.invoke(apiChannel(method), ...args)) as ApiReply<unknown>),
  ]),
) as unknown as Omit<StrataApi, 'subscribe'>;

const strata: StrataApi = {
  ...methods,
  subscribe(listener) {
    const forward = (_event: IpcRendererEvent, strataEvent: StrataEvent) => listener(strataEvent);
    ipcRenderer.on(EVENT_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, forward);
    };
  },
};

const desktop: DesktopBridge = {
  async chooseCatalogDirectory() {
    return (await ipcRenderer.invoke(CHOOSE_DIRECTORY_CHANNEL)) as string | null;
  },
  onOpenCatalog(listener) {
    const forward = (_event: IpcRendererEvent, backupPath: string) => listener(backupPath);
    ipcRenderer.on(OPEN_CATALOG_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(OPEN_CATALOG_CHANNEL, forward);
    };
  },
};

contextBridge.exposeInMainWorld('strata', strata);
contextBridge.exposeInMainWorld('strataDesktop', desktop);
