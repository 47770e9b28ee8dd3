import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probackupFixtureDir, repoRoot } from '../core/testing/pgBinaries.js';

// Electron main (dist/electron/main.mjs, as bundled for the app) run by Node against a stand-in
// `electron` module that records what main asks of Electron and lets a driver act as Electron
// would: fire `ready`, invoke IPC handlers as the renderer, request app:// URLs, create web
// contents. The engine utilityProcess is a real child process running apiHost.mjs (with a
// parentPort made from Node's IPC channel). This proves main's wiring where no Electron binary
// exists; e2e/electron.test.ts launches the real thing where one does.

const scratch = mkdtempSync(join(tmpdir(), 'strata-main-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const electronStub = `
const { fork } = require('node:child_process');
const { pathToFileURL } = require('node:url');
const path = require('node:path');
const stub = (globalThis.__electron = { ipc: new Map(), windows: [], sent: [], appHandlers: new Map(), schemes: [], protocol: null, children: [] });
let readyResolve;
const ready = new Promise((resolve) => (readyResolve = resolve));
stub.fireReady = () => readyResolve();
exports.app = {
  getAppPath: () => process.env.STUB_APP_DIR,
  requestSingleInstanceLock: () => true,
  on: (event, handler) => stub.appHandlers.set(event, handler),
  whenReady: () => ready,
  quit: () => { stub.quit = true; },
  isPackaged: false,
  getVersion: () => '0.1.0',
};
exports.protocol = {
  registerSchemesAsPrivileged: (schemes) => stub.schemes.push(...schemes),
  handle: (scheme, handler) => { stub.protocol = { scheme, handler }; },
};
exports.session = { defaultSession: { setPermissionRequestHandler: (handler) => { stub.permissionHandler = handler; } } };
exports.ipcMain = {
  handle: (channel, handler) => stub.ipc.set(channel, handler),
  removeHandler: (channel) => stub.ipc.delete(channel),
};
exports.Menu = { buildFromTemplate: (template) => ({ template }), setApplicationMenu: (menu) => { stub.menu = menu; } };
exports.dialog = {};
exports.shell = { openExternal: async (url) => { stub.openedExternal = url; } };
class BrowserWindow {
  constructor(options) {
    this.options = options;
    this.webContents = { send: (channel, payload) => stub.sent.push({ channel, payload }), once() {}, on() {} };
    stub.windows.push(this);
  }
  static getAllWindows() { return stub.windows; }
  static fromWebContents() { return stub.windows[0]; }
  isDestroyed() { return false; }
  on() {}
  loadURL(url) { this.loadedUrl = url; return Promise.resolve(); }
}
exports.BrowserWindow = BrowserWindow;
exports.utilityProcess = {
  fork: (modulePath, args, options) => {
    const child = fork(modulePath, args, {
      env: options.env,
      execArgv: ['--import', pathToFileURL(process.env.STUB_PARENT_PORT).href],
      serialization: 'advanced',
    });
    child.postMessage = (message) => child.send(message);
    stub.children.push(child);
    stub.forked = { modulePath, serviceName: options.serviceName, command: options.env.STRATA_ENGINE_COMMAND };
    return child;
  },
};
`;

const parentPortShim = `const listeners = new Map();
process.parentPort = {
  on(event, listener) { const wrapped = (data) => listener({ data, ports: [] }); listeners.set(listener, wrapped); process.on(event, wrapped); return this; },
  off(event, listener) { process.off(event, listeners.get(listener)); return this; },
  postMessage(message) { process.send(message); },
};
`;

const driver = `
const stub = () => globalThis.__electron;
await import(process.env.STUB_MAIN);
const e = stub();
e.fireReady();
await new Promise((resolve) => setTimeout(resolve, 100));
const fromApp = { senderFrame: { url: 'app://strata/index.html' } };
const invoke = (channel, event, ...args) => e.ipc.get(channel)(event, ...args);
const result = {};
result.schemes = e.schemes;
result.window = { url: e.windows[0].loadedUrl, webPreferences: e.windows[0].options.webPreferences };
result.forked = e.forked;
result.channels = [...e.ipc.keys()].sort();
result.openCatalog = await invoke('strata:api:openCatalog', fromApp, process.env.STUB_CATALOG);
result.badArgs = await invoke('strata:api:openCatalog', fromApp, 'relative');
result.foreign = await invoke('strata:api:listJobs', { senderFrame: { url: 'https://example.com/' } });
result.chooseFromForeignFrame = await invoke('strata:desktop:choose-directory', { senderFrame: { url: 'https://example.com/' }, sender: {} });
const page = await e.protocol.handler(new Request('app://strata/index.html'));
result.page = { status: page.status, csp: page.headers.get('content-security-policy'), body: await page.text() };
const route = await e.protocol.handler(new Request('app://strata/backups/TP11RT'));
result.route = await route.text();
result.outside = (await e.protocol.handler(new Request('app://strata/assets/..%2f..%2fsecret.txt'))).status;
let permission;
e.permissionHandler({}, 'media', (granted) => (permission = granted));
result.permission = permission;
const contents = { handlers: new Map(), setWindowOpenHandler(handler) { this.openHandler = handler; }, on(event, handler) { this.handlers.set(event, handler); } };
e.appHandlers.get('web-contents-created')({}, contents);
result.newWindow = contents.openHandler({ url: 'https://example.com/docs' });
result.openedExternal = e.openedExternal;
const navigate = (url) => { let prevented = false; contents.handlers.get('will-navigate')({ preventDefault: () => (prevented = true) }, url); return prevented; };
result.navigationPrevented = { external: navigate('https://example.com/'), file: navigate('file:///etc/passwd'), app: navigate('app://strata/jobs') };
let webviewPrevented = false;
contents.handlers.get('will-attach-webview')({ preventDefault: () => (webviewPrevented = true) });
result.webviewPrevented = webviewPrevented;
const job = await invoke('strata:api:startMerge', fromApp, process.env.STUB_CATALOG, 'demo', 'AAAAAA');
for (let i = 0; i < 200 && !e.sent.some((s) => s.payload.type === 'catalog-changed'); i++) await new Promise((r) => setTimeout(r, 25));
result.job = job;
result.events = e.sent.filter((s) => s.payload.type === 'job' && s.payload.job.id === job.value.id).map((s) => [s.channel, s.payload.job.state]);
e.appHandlers.get('before-quit')();
console.log('RESULT ' + JSON.stringify(result));
setTimeout(() => process.exit(0), 100);
`;

function runMain(): Promise<Record<string, unknown>> {
  const appDir = join(scratch, 'app');
  const built = spawnSync(
    process.execPath,
    [join(repoRoot, 'scripts', 'buildElectron.mjs'), '--outdir', join(appDir, 'dist', 'electron')],
    {
      encoding: 'utf8',
    },
  );
  expect(built.status, built.stderr).toBe(0);
  mkdirSync(join(appDir, 'dist', 'renderer'), { recursive: true });
  writeFileSync(
    join(appDir, 'dist', 'renderer', 'index.html'),
    '<!doctype html><title>Strata</title>',
  );
  writeFileSync(join(scratch, 'secret.txt'), 'not for the renderer');
  mkdirSync(join(appDir, 'dist', 'node_modules', 'electron'), { recursive: true });
  // main.mjs imports `electron`: resolved from dist/node_modules, beside the bundles.
  writeFileSync(join(appDir, 'dist', 'node_modules', 'electron', 'index.js'), electronStub);
  writeFileSync(
    join(appDir, 'dist', 'node_modules', 'electron', 'package.json'),
    '{"name":"electron","main":"index.js"}',
  );
  writeFileSync(join(scratch, 'parentPort.mjs'), parentPortShim);
  writeFileSync(join(scratch, 'driver.mjs'), driver);
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(scratch, 'driver.mjs')],
      {
        timeout: 60_000,
        env: {
          ...process.env,
          STUB_MAIN: join(appDir, 'dist', 'electron', 'main.mjs'),
          STUB_APP_DIR: appDir,
          STUB_PARENT_PORT: join(scratch, 'parentPort.mjs'),
          STUB_CATALOG: join(probackupFixtureDir, 'catalog'),
          STRATA_DEMO_DIR: join(scratch, 'demo'),
        },
      },
      (error, stdout, stderr) => {
        const line = stdout.split('\n').find((text) => text.startsWith('RESULT '));
        if (!line)
          return reject(new Error(`${error?.message ?? 'no result'}\n${stdout}\n${stderr}`));
        resolve(JSON.parse(line.slice('RESULT '.length)) as Record<string, unknown>);
      },
    );
  });
}

describe('Electron main process (bundled, against a stand-in electron module)', () => {
  it(
    'opens a locked-down window on app://, relays IPC to the engine process and blocks the rest',
    { timeout: 120_000 },
    async () => {
      const result = await runMain();
      expect(result['schemes']).toEqual([
        { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
      ]);
      expect(result['window']).toMatchObject({
        url: 'app://strata/index.html',
        webPreferences: {
          contextIsolation: true,
          sandbox: true,
          nodeIntegration: false,
          webviewTag: false,
        },
      });
      const appDir = join(scratch, 'app');
      expect(result['forked']).toEqual({
        modulePath: join(appDir, 'dist', 'electron', 'apiHost.mjs'),
        serviceName: 'Strata engine',
        command: `ELECTRON_RUN_AS_NODE=1 "${process.execPath}" "${join(appDir, 'dist', 'strata.mjs')}"`,
      });
      expect(result['channels']).toContain('strata:api:planRestore');
      expect(result['channels']).toContain('strata:desktop:choose-directory');
      expect(result['openCatalog']).toMatchObject({
        ok: true,
        value: { instances: [{ name: 'demo', backupCount: 3 }] },
      });
      expect(result['badArgs']).toEqual({
        ok: false,
        error: {
          code: 'usage',
          message:
            'openCatalog: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
        },
      });
      expect(result['foreign']).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
      expect(result['chooseFromForeignFrame']).toBeNull();
      expect(result['page']).toEqual({
        status: 200,
        csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        body: '<!doctype html><title>Strata</title>',
      });
      expect(result['route']).toBe('<!doctype html><title>Strata</title>');
      expect(result['outside']).toBe(404);
      expect(result['permission']).toBe(false);
      expect(result['newWindow']).toEqual({ action: 'deny' });
      expect(result['openedExternal']).toBe('https://example.com/docs');
      expect(result['navigationPrevented']).toEqual({ external: true, file: true, app: false });
      expect(result['webviewPrevented']).toBe(true);
      expect(result['job']).toMatchObject({ ok: true, value: { kind: 'merge', state: 'running' } });
      expect(result['events']).toEqual([
        ['strata:event', 'running'],
        ['strata:event', 'failed'],
      ]);
    },
  );
});
