import type { MessageEvent } from 'electron';
import { serveApiOverPort } from '../core/api/apiRelay.js';
import { createStrataApi } from '../core/api/strataApi.js';
import { LocalStorage } from '../core/storage/local/localStorage.js';

// The engine process of the desktop app: Electron main forks this file as a utilityProcess, so
// catalog reads, plans and every job run here, never on the main process that drives the windows.
// It serves the whole StrataApi to main over process.parentPort (core/api/apiRelay.ts).

const strataCommand = process.env['STRATA_ENGINE_COMMAND'];
if (strataCommand === undefined || strataCommand === '') {
  throw new Error(
    'STRATA_ENGINE_COMMAND is not set: this file is started by the Strata app (electron/main.ts)',
  );
}
const api = createStrataApi({
  storage: new LocalStorage(),
  strataCommand,
  searchDirs: [
    process.cwd(),
    ...(process.env['STRATA_APP_DIR'] ? [process.env['STRATA_APP_DIR']] : []),
  ],
});
const port = process.parentPort;
serveApiOverPort(api, {
  postMessage: (message) => port.postMessage(message),
  onMessage(listener) {
    const receive = (event: MessageEvent) => listener(event.data);
    port.on('message', receive);
    return () => {
      port.off('message', receive);
    };
  },
});
