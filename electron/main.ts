import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BrowserWindow,
  Menu,
  app,
  dialog,
  ipcMain,
  protocol,
  session,
  shell,
  utilityProcess,
} from 'electron';
import type {
  IpcMainInvokeEvent,
  MenuItemConstructorOptions,
  UtilityProcess,
  WebContents,
} from 'electron';
import { connectApiOverPort } from '../core/api/apiRelay.js';
import type { RelayedStrataApi } from '../core/api/apiRelay.js';
import type { StrataEvent } from '../core/api/contract.js';
import { CHOOSE_DIRECTORY_CHANNEL, EVENT_CHANNEL, OPEN_CATALOG_CHANNEL } from './channels.js';
import { registerStrataIpc } from './ipc.js';
import type { IpcInvokeEvent } from './ipc.js';
import {
  APP_ENTRY_URL,
  APP_SCHEME,
  CONTENT_SECURITY_POLICY,
  contentTypeOf,
  desktopStrataCommand,
  isAppUrl,
  rendererFileFor,
} from './security.js';

// Electron main: the window, the menu, one instance, the app:// protocol with its CSP, and the
// IPC that exposes StrataApi. The API itself — catalog reads and every job — runs in a
// utilityProcess (apiHost.ts) reached through core/api/apiRelay.ts, so nothing heavy ever runs
// here. STRATA_ELECTRON_SMOKE=1 makes the app check its bridge once the page has loaded, print
// the result as one JSON line and quit: the launch test (e2e/electron.test.ts) uses it.

const bundleDir = dirname(fileURLToPath(import.meta.url));
const rendererDir =
  process.env['STRATA_RENDERER_DIR'] ?? join(app.getAppPath(), 'dist', 'renderer');
const smokeTest = process.env['STRATA_ELECTRON_SMOKE'] === '1';
/** How long a crashed engine process waits before it is started again. */
const ENGINE_RESTART_DELAY_MS = 1000;

protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);

let mainWindow: BrowserWindow | undefined;
let engine: { child: UtilityProcess; api: RelayedStrataApi } | undefined;
let quitting = false;

function broadcast(event: StrataEvent): void {
  for (const window of BrowserWindow.getAllWindows()) {
    if (!window.isDestroyed()) window.webContents.send(EVENT_CHANNEL, event);
  }
}

function startEngine(): { child: UtilityProcess; api: RelayedStrataApi } {
  const child = utilityProcess.fork(join(bundleDir, 'apiHost.mjs'), [], {
    serviceName: 'Strata engine',
    env: {
      ...process.env,
      STRATA_ENGINE_COMMAND: desktopStrataCommand(process.execPath, app.getAppPath()),
      STRATA_APP_DIR: app.getAppPath(),
    },
  });
  const api = connectApiOverPort({
    postMessage: (message) => child.postMessage(message),
    onMessage(listener) {
      child.on('message', listener);
      return () => {
        child.off('message', listener);
      };
    },
  });
  api.subscribe(broadcast);
  child.once('exit', (code) => {
    api.disconnect(
      `The Strata engine process stopped (exit code ${code}); running jobs were lost. It is being restarted.`,
    );
    if (quitting) return;
    setTimeout(() => {
      if (!quitting) engine = startEngine();
    }, ENGINE_RESTART_DELAY_MS);
  });
  return { child, api };
}

/** Only the app's own page, in its main frame, may call the API or the desktop bridge. */
function isTrustedSender(event: IpcInvokeEvent): boolean {
  return event.senderFrame !== null && isAppUrl(event.senderFrame.url);
}

async function serveRendererFile(request: Request): Promise<Response> {
  const path = rendererFileFor(request.url, rendererDir);
  if (path === undefined) return new Response('Not found', { status: 404 });
  try {
    return new Response(await readFile(path), {
      headers: {
        'Content-Type': contentTypeOf(path),
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'X-Content-Type-Options': 'nosniff',
      },
    });
  } catch {
    const hint = path.endsWith('index.html')
      ? `The renderer is not built: "${path}" is missing (npm run build:renderer).`
      : 'Not found';
    return new Response(hint, {
      status: 404,
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
  }
}

/** Every web contents, present and future: no new windows, no navigation away, no webviews. */
function lockDown(contents: WebContents): void {
  contents.setWindowOpenHandler(({ url }) => {
    // Links to documentation open in the user's browser, never inside the app.
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event, url) => {
    if (!isAppUrl(url)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

async function chooseCatalogDirectory(window: BrowserWindow | undefined): Promise<string | null> {
  const options = { title: 'Open a backup catalog', properties: ['openDirectory' as const] };
  const result = window
    ? await dialog.showOpenDialog(window, options)
    : await dialog.showOpenDialog(options);
  return result.canceled ? null : (result.filePaths[0] ?? null);
}

function sendOpenCatalog(backupPath: string): void {
  mainWindow?.webContents.send(OPEN_CATALOG_CHANNEL, backupPath);
}

function buildMenu(): Menu {
  const isMac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        {
          label: 'Open Catalog…',
          accelerator: 'CmdOrCtrl+O',
          click: async () => {
            const path = await chooseCatalogDirectory(mainWindow);
            if (path !== null) sendOpenCatalog(path);
          },
        },
        {
          label: 'Open the Demo Catalog',
          click: async () => {
            const demo = engine ? await engine.api.demoCatalog().catch(() => null) : null;
            if (demo !== null) sendOpenCatalog(demo);
            else
              void dialog.showMessageBox({
                message: 'There is no demo catalog yet: create it from the start page.',
              });
          },
        },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' as const }]),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [
        {
          label: 'About Strata',
          click: () =>
            void dialog.showMessageBox({
              message: `Strata ${app.getVersion()}`,
              detail:
                'PostgreSQL backup and point-in-time recovery, compatible with pg_probackup 2.5.',
            }),
        },
      ],
    },
  ];
  return Menu.buildFromTemplate(template);
}

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 960,
    minHeight: 600,
    title: 'Strata',
    show: !smokeTest,
    webPreferences: {
      preload: join(bundleDir, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  window.on('closed', () => {
    if (mainWindow === window) mainWindow = undefined;
  });
  void window.loadURL(APP_ENTRY_URL);
  return window;
}

/** STRATA_ELECTRON_SMOKE: is the bridge there, does a call reach the engine and come back? */
async function reportSmokeTest(window: BrowserWindow): Promise<void> {
  const probe = `(async () => ({
    strata: typeof window.strata === 'object' && typeof window.strata.listJobs === 'function',
    desktop: typeof window.strataDesktop === 'object',
    node: typeof window.require !== 'undefined' || typeof window.process !== 'undefined',
    jobs: await window.strata.listJobs().then((jobs) => jobs.length, (error) => String(error)),
    refused: await window.strata.openCatalog('relative/path').then(() => 'accepted', (error) => error.message),
  }))()`;
  try {
    const result = await window.webContents.executeJavaScript(probe);
    process.stdout.write(
      `STRATA_SMOKE ${JSON.stringify({ ok: true, url: window.webContents.getURL(), ...result })}\n`,
    );
  } catch (error) {
    process.stdout.write(`STRATA_SMOKE ${JSON.stringify({ ok: false, error: String(error) })}\n`);
  }
  app.quit();
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('web-contents-created', (_event, contents) => lockDown(contents));
  app.on('before-quit', () => {
    quitting = true;
    engine?.child.kill();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin' || smokeTest) app.quit();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow();
  });

  void app.whenReady().then(() => {
    // The app asks for no permission (camera, notifications, …); refuse whatever a page requests.
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) =>
      callback(false),
    );
    protocol.handle(APP_SCHEME, serveRendererFile);
    engine = startEngine();
    registerStrataIpc(ipcMain, {
      getApi: () => {
        if (!engine) throw new Error('The Strata engine process is not running');
        return engine.api;
      },
      isTrustedSender,
    });
    ipcMain.handle(CHOOSE_DIRECTORY_CHANNEL, (event: IpcMainInvokeEvent) =>
      isTrustedSender(event)
        ? chooseCatalogDirectory(BrowserWindow.fromWebContents(event.sender) ?? undefined)
        : null,
    );
    Menu.setApplicationMenu(buildMenu());
    mainWindow = createWindow();
    if (smokeTest) {
      const window = mainWindow;
      window.webContents.once('did-finish-load', () => void reportSmokeTest(window));
      window.webContents.once('did-fail-load', (_event, code, description) => {
        process.stdout.write(
          `STRATA_SMOKE ${JSON.stringify({ ok: false, error: `${code} ${description}` })}\n`,
        );
        app.quit();
      });
    }
  });
}
